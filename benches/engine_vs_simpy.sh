#!/usr/bin/env bash
# The simulator against the SimPy reference model (benches/simpy_ref.py), side by side on the
# same machine: the measurement behind the speed figures of docs/benchmarks.md (issue 18 §3).
#
# Runs the reference SIMPY_REPS times (default 3, about 9-13 s each) and splitlab SPLITLAB_REPS
# times (default 10) on scenarios/bench-1m.yaml (one million requests; the scenario's header
# maps each of the reference's options onto it), one process at a time, and prints for each:
#
#   engine    requests / the simulator's own time (SimPy's sim_wall_s, splitlab's `wall`)
#   process   requests / the wall time of the whole process (start to exit: Python's start-up
#             and JSON for SimPy; scenario load, CSVs, 12 charts, report.html for splitlab)
#   peak RSS  of each process (from wait4)
#
# with the median and the best of each, and the ratios splitlab / SimPy of the medians (and of
# the bests). Also prints `uptime` before and after: the machine must be quiet (load near 0)
# for the figures to mean anything.
#
# Beside them it runs the floor FLOOR_REPS times (default 10): benches/des_floor.rs, the same
# model as the plainest hand-written Rust DES (a std BinaryHeap, one HDR histogram, nothing
# else), built here with cargo when missing. It shows how far above the floor splitlab's engine
# runs, and what the SimPy ratio of a simulator that does nothing but the model would be.
#
#   cargo build --release && benches/engine_vs_simpy.sh
#   SIMPY_REPS=1 SPLITLAB_REPS=3 benches/engine_vs_simpy.sh   # quicker, noisier
#
# Environment: SPLITLAB (binary, default target/release/splitlab), FLOOR (default
# target/release/examples/des_floor; FLOOR= skips it), PYTHON (default python3), SIMPY_REPS,
# SPLITLAB_REPS, FLOOR_REPS, KEEP=1 keeps the temp dir with every run's outputs. Installs
# nothing: without the simpy module it says how to get it and exits 0.
set -euo pipefail

cd "$(dirname "$0")/.."

SPLITLAB=${SPLITLAB:-target/release/splitlab}
PYTHON=${PYTHON:-python3}
SIMPY_REPS=${SIMPY_REPS:-3}
SPLITLAB_REPS=${SPLITLAB_REPS:-10}
FLOOR=${FLOOR-target/release/examples/des_floor}
FLOOR_REPS=${FLOOR_REPS:-10}

if [[ ! -x "$SPLITLAB" ]]; then
    echo "engine_vs_simpy.sh: $SPLITLAB not found; build it with: cargo build --release" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import simpy' 2>/dev/null; then
    echo "engine_vs_simpy.sh: skipped, the SimPy reference needs the simpy module:" \
        "pip install simpy (or pip install --break-system-packages simpy)"
    exit 0
fi

if [[ -n "$FLOOR" && ! -x "$FLOOR" ]]; then
    if [[ "$FLOOR" == target/release/examples/des_floor ]] && command -v cargo >/dev/null; then
        cargo build --release --example des_floor >&2
    else
        echo "engine_vs_simpy.sh: $FLOOR not found; build it with:" \
            "cargo build --release --example des_floor (or FLOOR= to skip it)" >&2
        exit 1
    fi
fi

TMP=$(mktemp -d)
if [[ "${KEEP:-0}" == 1 ]]; then
    echo "outputs kept in $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

echo "before: $(uptime)"
SPLITLAB="$SPLITLAB" PYTHON="$PYTHON" SIMPY_REPS="$SIMPY_REPS" SPLITLAB_REPS="$SPLITLAB_REPS" \
    FLOOR="$FLOOR" FLOOR_REPS="$FLOOR_REPS" TMP="$TMP" "$PYTHON" - <<'EOF'
import json, os, re, statistics, subprocess, sys, time

env = os.environ
tmp = env["TMP"]


def timed(argv, stdout):
    """Runs argv to completion: (wall seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss / 1024.0


# The reference's options; the floor takes the same ones.
MODEL = ["--lambda", "10000", "--duration", "100", "--weights", "90,10", "--pods", "10,10",
         "--cc", "10", "--qd", "100", "--service-mean", "0.01", "--seed", "1", "--lb", "rr",
         "--json"]


def json_runs(name, argv, reps):
    """Runs a program that prints the reference's JSON (total.arrived, sim_wall_s) reps times."""
    runs = []
    for i in range(reps):
        out = os.path.join(tmp, f"{name}-{i}.json")
        with open(out, "w") as f:
            wall, rss = timed(argv, f)
        with open(out) as f:
            j = json.load(f)
        runs.append((j["total"]["arrived"], j["sim_wall_s"], wall, rss))
        print(f"{name:8} run {i + 1}: {j['total']['arrived']} requests,"
              f" engine {j['sim_wall_s']:.3f} s, process {wall:.3f} s, peak RSS {rss:.1f} MiB",
              flush=True)
    return runs


ours = []
simpy = json_runs("simpy", [env["PYTHON"], "benches/simpy_ref.py", *MODEL],
                  int(env["SIMPY_REPS"]))
floor = json_runs("floor", [env["FLOOR"], *MODEL], int(env["FLOOR_REPS"])) if env["FLOOR"] else []

for i in range(int(env["SPLITLAB_REPS"])):
    out = os.path.join(tmp, f"splitlab-{i}.txt")
    with open(out, "w") as f:
        wall, rss = timed([env["SPLITLAB"], "run", "scenarios/bench-1m.yaml",
                           "--out", os.path.join(tmp, "run")], f)
    with open(out) as f:
        text = f.read()
    engine = float(re.search(r"\bwall ([0-9.]+) s", text).group(1))
    arrived = int(re.search(r"\barrived (\d+)", text).group(1))
    ours.append((arrived, engine, wall, rss))
    print(f"splitlab run {i + 1}: {arrived} requests, engine {engine:.3f} s,"
          f" process {wall:.3f} s, peak RSS {rss:.1f} MiB", flush=True)


def rates(runs, col):
    return [r[0] / r[col] for r in runs]


print()
print(f"{'':10} {'engine req/s (median / best)':>32} {'process req/s (median / best)':>32}"
      f" {'peak RSS (max)':>15}")
summary = {}
for name, runs in (("simpy", simpy), ("splitlab", ours), ("floor", floor)):
    if not runs:
        continue
    e, p = rates(runs, 1), rates(runs, 2)
    summary[name] = (statistics.median(e), max(e), statistics.median(p), max(p))
    print(f"{name:10} {summary[name][0]:>15,.0f} / {summary[name][1]:>14,.0f}"
          f" {summary[name][2]:>15,.0f} / {summary[name][3]:>14,.0f}"
          f" {max(r[3] for r in runs):>11.1f} MiB")
s, o = summary["simpy"], summary["splitlab"]
print(f"ratio splitlab/simpy: engine {o[0] / s[0]:.1f}x (best {o[1] / s[1]:.1f}x),"
      f" process {o[2] / s[2]:.1f}x (best {o[3] / s[3]:.1f}x)")
print("targets (issue 18 §3): engine >= 120x, process >= 80x")
if floor:
    f = summary["floor"]
    print(f"the floor (des_floor): engine {f[0] / s[0]:.1f}x SimPy (best {f[1] / s[1]:.1f}x);"
          f" splitlab's engine takes {f[0] / o[0]:.2f}x the floor's time (best {f[1] / o[1]:.2f}x)")
EOF
echo "after: $(uptime)"

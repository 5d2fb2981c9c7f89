#!/usr/bin/env bash
# Live-mode benchmarks for splitlab: `splitlab load` against wrk and oha, the rate accuracy of
# the open-loop pacer, and `splitlab gateway` against an nginx weighted upstream; then the same
# over HTTP/2 with prior knowledge (h2c): `splitlab load --h2c` against h2load, and the gateway
# against nginx, both driven by h2load.
#
# Everything runs on 127.0.0.1 with temporary directories; nothing is installed. A measurement
# whose tool (wrk, oha, h2load, nginx) is missing is skipped with a message.
#
#   benches/live.sh            # full durations (about 3 minutes)
#   QUICK=1 benches/live.sh    # short durations (a smoke test, numbers not meaningful)
#
# Environment: ONLY=load or ONLY=gateway runs only the load-generator sections (1, 2 and the
# h2c throughput of 4) or only the gateway sections (3 and the h2c gateway of 4); default: all.
# GW_REPS (gateway rounds, default 1: each round runs direct, nginx, gateway back to back; the
# summary gives each round and the medians of the per-round ratio and added latencies).
# REPS (throughput runs per generator, default 2), SPLITLAB (binary, default target/release/splitlab), OHA (default oha on PATH,
# else /opt/oha/bin/oha), WRK, H2LOAD, NGINX, C (connections, default 50), KEEP=1 keeps the temp
# dir, PORT_BASE (default 8080: the ports used are PORT_BASE+1 to PORT_BASE+15).
#
# The gateway runs twice beside nginx's proxy: `--workers 1` ("gateway": one single-threaded
# event loop, like for like with the proxy's `worker_processes 1`), the row its targets apply
# to, and with its default of one worker per core ("gateway-all"), reported for reference.
set -euo pipefail

cd "$(dirname "$0")/.."

SPLITLAB=${SPLITLAB:-target/release/splitlab}
C=${C:-50}
if [[ "${QUICK:-0}" == 1 ]]; then
    TPUT_D=3; RATE_D=5; GW_D=3
else
    TPUT_D=10; RATE_D=30; GW_D=10
fi

find_tool() { # name, explicit path, fallback path
    if [[ -n "$2" ]]; then command -v "$2" || true; return; fi
    command -v "$1" 2>/dev/null || { [[ -x "$3" ]] && echo "$3"; } || true
}
WRK=$(find_tool wrk "${WRK:-}" /usr/bin/wrk)
OHA=$(find_tool oha "${OHA:-}" /opt/oha/bin/oha)
NGINX=$(find_tool nginx "${NGINX:-}" /usr/sbin/nginx)
H2LOAD=$(find_tool h2load "${H2LOAD:-}" /usr/bin/h2load)

if [[ ! -x "$SPLITLAB" ]]; then
    echo "live.sh: $SPLITLAB not found; build it with: cargo build --release" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "live.sh: python3 is needed to read JSON" >&2; exit 1; }

TMP=$(mktemp -d /tmp/splitlab-live.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HOST=hello.default.example.com
B=${PORT_BASE:-8080}
P_V1=$((B + 1)); P_V2=$((B + 2)); P_NGLB=$((B + 10)); P_GW=$((B + 11))
# h2c (prior knowledge): backends, nginx's front, the gateway with h2c backends
P_V1H2=$((B + 3)); P_V2H2=$((B + 4)); P_NGLB_H2=$((B + 12)); P_GW_H2=$((B + 13))
# the gateway with its default workers (one per core), HTTP/1.1 and h2c
P_GW_ALL=$((B + 14)); P_GW_H2_ALL=$((B + 15))
ONLY=${ONLY:-}
case "$ONLY" in
    "" | load | gateway) ;;
    *) echo "live.sh: ONLY=$ONLY: expected load or gateway" >&2; exit 1 ;;
esac
want() { [[ -z "$ONLY" || "$ONLY" == "$1" ]]; } # section group: load or gateway
SUMMARY=()   # rows "measurement|value|target|verdict"
row() { SUMMARY+=("$1|$2|${3:-}|${4:-}"); }
skip() { echo "SKIP: $*"; row "$1" "skipped (${2})" "" ""; }

jget() { # file, python expression on `d`
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
calc() { python3 -c "print($1)"; }

wait_port() { # port
    local i
    for i in $(seq 1 100); do
        if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "port $1 never opened" >&2; return 1
}

# wrk helpers: requests/s, latency percentile in µs (wrk prints 1.23ms, 456.00us, 1.01s)
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_pct_us() { # file, percentile label (50%, 99%)
    awk -v p="$2" '$1 == p {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : 1
        printf "%.0f\n", v * f }' "$1"
}
wrk_errors() { # non-2xx and socket errors, "" when none
    grep -E 'Non-2xx|Socket errors' "$1" | tr -s ' ' | paste -sd';' - || true
}

# ---------------------------------------------------------------- nginx
NGX_DIR=$TMP/nginx
start_nginx() {
    mkdir -p "$NGX_DIR"/{tmp,logs}
    cat >"$NGX_DIR/nginx.conf" <<EOF
worker_processes 1;
error_log $NGX_DIR/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $NGX_DIR/tmp/body;
    proxy_temp_path $NGX_DIR/tmp/proxy;
    fastcgi_temp_path $NGX_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGX_DIR/tmp/uwsgi;
    scgi_temp_path $NGX_DIR/tmp/scgi;
    keepalive_requests 1000000;
    default_type text/plain;
    server { listen 127.0.0.1:$P_V1; location / { return 200 "Hello v1!\n"; } }
    server { listen 127.0.0.1:$P_V2; location / { return 200 "Hello v2!\n"; } }
    # h2c with prior knowledge: before nginx 1.25.1 a cleartext "listen ... http2" port speaks
    # only HTTP/2 (no HTTP/1.1, no Upgrade); from 1.25.1 "http2 on;" also takes HTTP/1.1.
    server { listen 127.0.0.1:$P_V1H2 http2; location / { return 200 "Hello v1!\n"; } }
    server { listen 127.0.0.1:$P_V2H2 http2; location / { return 200 "Hello v2!\n"; } }
}
EOF
    "$NGINX" -p "$NGX_DIR" -c "$NGX_DIR/nginx.conf" -e "$NGX_DIR/logs/error.log" \
        -g "daemon off; pid $NGX_DIR/nginx.pid;" &
    PIDS+=($!)
    # The weighted upstreams run in their own nginx (one worker), as the gateway runs in its
    # own process: a proxy sharing the backends' worker would save a process switch per
    # request that the gateway cannot, and the comparison would not be like for like.
    mkdir -p "$NGX_DIR/lb"/{tmp,logs}
    cat >"$NGX_DIR/lb/nginx.conf" <<EOF
worker_processes 1;
error_log $NGX_DIR/lb/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $NGX_DIR/lb/tmp/body;
    proxy_temp_path $NGX_DIR/lb/tmp/proxy;
    fastcgi_temp_path $NGX_DIR/lb/tmp/fastcgi;
    uwsgi_temp_path $NGX_DIR/lb/tmp/uwsgi;
    scgi_temp_path $NGX_DIR/lb/tmp/scgi;
    keepalive_requests 1000000;
    upstream u {
        server 127.0.0.1:$P_V1 weight=9;
        server 127.0.0.1:$P_V2 weight=1;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$P_NGLB;
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    # h2c in and out: nginx proxies HTTP/2 upstream only with grpc_pass (proxy_pass speaks
    # HTTP/1.x), which relays any request over h2c, as the gateway does.
    upstream u_h2 {
        server 127.0.0.1:$P_V1H2 weight=9;
        server 127.0.0.1:$P_V2H2 weight=1;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$P_NGLB_H2 http2;
        location / { grpc_pass grpc://u_h2; }
    }
}
EOF
    "$NGINX" -p "$NGX_DIR/lb" -c "$NGX_DIR/lb/nginx.conf" -e "$NGX_DIR/lb/logs/error.log" \
        -g "daemon off; pid $NGX_DIR/lb/nginx.pid;" &
    PIDS+=($!)
    wait_port $P_V1; wait_port $P_V2; wait_port $P_NGLB
    wait_port $P_V1H2; wait_port $P_V2H2; wait_port $P_NGLB_H2
}

have_nginx=0
if [[ -n "$NGINX" ]]; then
    start_nginx
    have_nginx=1
    echo "nginx: backends on :$P_V1 :$P_V2, weighted upstream on :$P_NGLB ($TMP)"
else
    echo "SKIP: nginx not found; every measurement needs it as the backend"
fi
echo "durations: throughput ${TPUT_D}s, rate ${RATE_D}s, gateway ${GW_D}s; C=$C; $(nproc) cores"
echo

# ---------------------------------------------------------------- 1. throughput
# Each generator runs REPS times, interleaved (splitlab, oha, wrk, splitlab, ...); the best
# run of each is reported, since one run on 2 shared cores varies by tens of percent.
BACKEND=http://127.0.0.1:$P_V1/
REPS=${REPS:-2}
best() { python3 -c "import sys; print(max(float(x) for x in sys.argv[1:]))" "$@"; }
if ((have_nginx)) && want load; then
    echo "== 1. load generator throughput, -c $C, ${TPUT_D}s, against nginx :$P_V1, best of $REPS"
    SL=(); OH=(); WR=(); sl_err=0; oha_ok=""; wrk_e=""
    for rep in $(seq 1 "$REPS"); do
        out=$TMP/tput-splitlab-$rep
        "$SPLITLAB" load --target "$BACKEND" --rate max --connections "$C" --duration "${TPUT_D}s" \
            --classify 'body:v1=v1,body:v2=v2' --expect v1=100 --out "$out" >"$out.log" 2>&1
        grep -E '^requests:|^sent ' "$out.log"
        SL+=("$(jget "$out/summary.json" "d['requests']['served'] / $TPUT_D")")
        sl_err=$((sl_err + $(jget "$out/summary.json" "d['requests']['errors']")))
        echo "splitlab #$rep: served/duration = ${SL[-1]} req/s"
        if [[ -n "$OHA" ]]; then
            f=$TMP/oha-$rep.json
            "$OHA" -z "${TPUT_D}s" -c "$C" --no-tui --output-format json "$BACKEND" >"$f" 2>"$f.err" || true
            OH+=("$(jget "$f" "d['summary']['requestsPerSec']")")
            oha_ok+=" $(jget "$f" "d['summary']['successRate']")"
            echo "oha #$rep: ${OH[-1]} req/s, status $(jget "$f" "d.get('statusCodeDistribution')"), errors $(jget "$f" "d.get('errorDistribution')")"
        fi
        if [[ -n "$WRK" ]]; then
            f=$TMP/wrk-tput-$rep.txt
            "$WRK" -t1 -c "$C" -d "${TPUT_D}s" "$BACKEND" >"$f"
            WR+=("$(wrk_rps "$f")"); e=$(wrk_errors "$f"); wrk_e+=${e:+" $e"}
            echo "wrk #$rep: ${WR[-1]} req/s${e:+ [$e]}"
        fi
    done
    sl_rps=$(best "${SL[@]}")
    row "throughput splitlab load --rate max" "$(printf '%.0f' "$sl_rps") req/s (runs: $(printf '%.0f ' "${SL[@]}")errors $sl_err)" "" ""
    if [[ -n "$OHA" ]]; then
        oha_rps=$(best "${OH[@]}")
        row "throughput oha" "$(printf '%.0f' "$oha_rps") req/s (runs: $(printf '%.0f ' "${OH[@]}")success$oha_ok)" "" ""
        row "  ratio splitlab/oha" "$(calc "round($sl_rps / $oha_rps, 2)")" "" ""
    else
        skip "throughput oha" "oha not found"
    fi
    if [[ -n "$WRK" ]]; then
        w=$(best "${WR[@]}")
        row "throughput wrk -t1" "$(printf '%.0f' "$w") req/s (runs: $(printf '%.0f ' "${WR[@]}" | sed 's/ $//'))${wrk_e:+ [$wrk_e]}" "" ""
        row "  ratio splitlab/wrk" "$(calc "round($sl_rps / $w, 2)")" "" ""
    else
        skip "throughput wrk" "wrk not found"
    fi
    echo
fi

# ---------------------------------------------------------------- 2. rate accuracy
if ((have_nginx)) && want load; then
    for R in 1000 10000; do
        echo "== 2. rate accuracy: --rate $R for ${RATE_D}s"
        out=$TMP/rate-$R
        "$SPLITLAB" load --target "$BACKEND" --rate "$R" --duration "${RATE_D}s" \
            --classify 'body:v1=v1,body:v2=v2' --expect v1=100 --out "$out" >"$out.log" 2>&1
        grep -E '^requests:|^split:|^send lag|^sent ' "$out.log"
        arrived=$(jget "$out/summary.json" "d['requests']['arrived']")
        served=$(jget "$out/summary.json" "d['requests']['served']")
        achieved=$(calc "$arrived / $RATE_D")
        err_pct=$(calc "round(100 * ($achieved - $R) / $R, 2)")
        p99=$(jget "$out/load.json" "d['send_lag_us']['p99']")
        mx=$(jget "$out/load.json" "d['send_lag_us']['max']")
        ok_rate=$(calc "'PASS' if abs($achieved - $R) <= 0.01 * $R else 'FAIL'")
        ok_lag=$(calc "'PASS' if $p99 < 1000 else 'FAIL'")
        echo "arrived $arrived, served $served: $achieved req/s (${err_pct}%), send lag p99 ${p99} µs, max ${mx} µs"
        row "rate $R: achieved" "$(printf '%.1f' "$achieved") req/s (${err_pct}%), served $served/$arrived" "within 1%" "$ok_rate"
        row "rate $R: send lag p99" "${p99} µs (max ${mx} µs)" "< 1000 µs" "$ok_lag"
        echo
    done
fi

# splitlab gateway splitting 90/10 (random picker) between backends on ports $2 and $3,
# listening on port $4, with --workers $5 (empty: its default, one per core); config and log as
# $TMP/$1.yaml and $TMP/$1.log; its pid in GATEWAY_PID.
start_gateway() {
    cat >"$TMP/$1.yaml" <<EOF
service: {name: hello, namespace: default, domain: example.com}
traffic:
  - {revisionName: v1, percent: 90}
  - {revisionName: v2, percent: 10}
backends:
  v1: [http://127.0.0.1:$2]
  v2: [http://127.0.0.1:$3]
picker: random
EOF
    "$SPLITLAB" gateway --config "$TMP/$1.yaml" --listen "127.0.0.1:$4" ${5:+--workers "$5"} \
        >"$TMP/$1.log" 2>&1 &
    GATEWAY_PID=$!
    PIDS+=($GATEWAY_PID)
    wait_port "$4"
}

# ---------------------------------------------------------------- 3. gateway
GW_REPS=${GW_REPS:-1}
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
# A round's label suffix: nothing with one round (the rows read as they always did), else " #N".
round_tag() { ((GW_REPS > 1)) && echo " #$1" || true; }
if ((have_nginx)) && [[ -n "$WRK" ]] && want gateway; then
    echo "== 3. gateway: wrk -t1 -c$C -d${GW_D}s --latency with Host: $HOST, $GW_REPS round(s)"
    echo "gateway: --workers 1 on :$P_GW (like nginx's worker_processes 1); gateway-all: default workers ($(nproc) cores) on :$P_GW_ALL"
    start_gateway gateway "$P_V1" "$P_V2" "$P_GW" 1
    GW_PID=$GATEWAY_PID
    start_gateway gateway-all "$P_V1" "$P_V2" "$P_GW_ALL" ""
    GW_ALL_PID=$GATEWAY_PID
    # sanity: 100 requests through the split (expect about 90 v1 / 10 v2)
    for i in $(seq 1 100); do
        curl -s -H "Host: $HOST" "http://127.0.0.1:$P_GW/" 2>/dev/null || true
    done | sort | uniq -c | sed 's/^/  gateway sample: /' || true

    declare -A RPS P50 P99
    RATIOS=(); RATIOS_all=(); ADD50_gateway=(); ADD99_gateway=(); ADD50_nginx=(); ADD99_nginx=()
    ADD50_gateway_all=(); ADD99_gateway_all=(); VS99_gateway=(); VS99_gateway_all=()
    for rep in $(seq 1 "$GW_REPS"); do
        tag=$(round_tag "$rep")
        for t in direct:$P_V1 nginx:$P_NGLB gateway:$P_GW gateway-all:$P_GW_ALL; do
            name=${t%%:*}; port=${t##*:}
            f=$TMP/wrk-$name-$rep.txt
            "$WRK" -t1 -c "$C" -d "${GW_D}s" --latency -H "Host: $HOST" "http://127.0.0.1:$port/" >"$f"
            echo "-- $name (:$port)$tag"; cat "$f"
            RPS[$name]=$(wrk_rps "$f"); P50[$name]=$(wrk_pct_us "$f" 50%); P99[$name]=$(wrk_pct_us "$f" 99%)
            e=$(wrk_errors "$f")
            [[ -n "$e" ]] && echo "!! $name: $e"
            row "wrk via $name$tag" "$(printf '%.0f' "${RPS[$name]}") req/s, p50 ${P50[$name]} µs, p99 ${P99[$name]} µs${e:+ [$e]}" "" ""
        done
        RATIOS+=("$(calc "${RPS[gateway]} / ${RPS[nginx]}")")
        RATIOS_all+=("$(calc "${RPS[gateway-all]} / ${RPS[nginx]}")")
        ADD50_gateway+=($((P50[gateway] - P50[direct]))); ADD99_gateway+=($((P99[gateway] - P99[direct])))
        ADD50_gateway_all+=($((P50[gateway-all] - P50[direct]))); ADD99_gateway_all+=($((P99[gateway-all] - P99[direct])))
        ADD50_nginx+=($((P50[nginx] - P50[direct]))); ADD99_nginx+=($((P99[nginx] - P99[direct])))
        VS99_gateway+=($((P99[gateway] - P99[nginx]))); VS99_gateway_all+=($((P99[gateway-all] - P99[nginx])))
    done
    if ! kill -0 "$GW_PID" 2>/dev/null; then
        echo "!! the gateway exited during the run:"; cat "$TMP/gateway.log"
    fi
    if ! kill -0 "$GW_ALL_PID" 2>/dev/null; then
        echo "!! the gateway (default workers) exited during the run:"; cat "$TMP/gateway-all.log"
    fi
    gr=$(calc "round($(median "${RATIOS[@]}"), 2)")
    runs=""
    ((GW_REPS > 1)) && runs=" (median; rounds: $(printf '%.2f ' "${RATIOS[@]}" | sed 's/ $//'))"
    row "  ratio gateway/nginx" "$gr$runs" ">= 0.8" "$(calc "'PASS' if $gr >= 0.8 else 'FAIL'")"
    gr=$(calc "round($(median "${RATIOS_all[@]}"), 2)")
    runs=""
    ((GW_REPS > 1)) && runs=" (median; rounds: $(printf '%.2f ' "${RATIOS_all[@]}" | sed 's/ $//'))"
    row "  ratio gateway-all/nginx" "$gr$runs" "" ""
    for name in gateway gateway-all nginx; do
        v=${name//-/_}; a50=ADD50_$v[@]; a99=ADD99_$v[@]
        m50=$(printf '%.0f' "$(median "${!a50}")"); m99=$(printf '%.0f' "$(median "${!a99}")")
        runs=""
        ((GW_REPS > 1)) && runs=" (median; p99 rounds: $(printf '%+d ' "${!a99}" | sed 's/ $//'))"
        row "  added latency $name vs direct" "$(printf 'p50 %+d µs, p99 %+d µs' "$m50" "$m99")$runs" "" ""
    done
    # The target compares added p99s; both subtract the same round's direct p99, so it is the
    # proxies' p99s side by side, round by round. The paired difference leaves out the direct
    # run, whose own p99 swings by milliseconds on a shared machine.
    for name in gateway gateway-all; do
        v=VS99_${name//-/_}[@]
        m=$(printf '%.0f' "$(median "${!v}")")
        runs=""
        ((GW_REPS > 1)) && runs=" (median; rounds: $(printf '%+d ' "${!v}" | sed 's/ $//'))"
        verdict=""; target=""
        [[ $name == gateway ]] && target="<= 0" && verdict=$(calc "'PASS' if $m <= 0 else 'FAIL'")
        row "  p99 $name - nginx, same round" "$(printf '%+d µs' "$m")$runs" "$target" "$verdict"
    done
    echo
elif ((have_nginx)) && want gateway; then
    skip "gateway" "wrk not found"
fi

# ---------------------------------------------------------------- 4. HTTP/2 (h2c)
# h2load helpers: requests/s, failures ("" when none), a latency percentile in µs from its
# per-request log (start µs, status, duration µs; h2load prints no percentiles itself)
h2_rps() { awk '/^finished in/ {print $4}' "$1"; }
h2_errors() {
    awk '/^requests:/ { f = $10 + $12 + $14; if (f > 0) printf "failed %d errored %d timeout %d;", $10, $12, $14 }
         /^status codes:/ { n = $5 + $7 + $9; if (n > 0) printf "non-2xx %d", n }' "$1"
}
h2_pct_us() { # log file, percentile (50, 99)
    python3 -c "
import sys
d = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.strip())
print(d[min(len(d) - 1, int(len(d) * float(sys.argv[2]) / 100))] if d else 0)" "$1" "$2"
}
BACKEND_H2=http://127.0.0.1:$P_V1H2/
if ((have_nginx)) && [[ -n "$H2LOAD" ]] && want load; then
    echo "== 4. h2c: load generator throughput, -c $C, one request per connection at a time, ${TPUT_D}s, against nginx :$P_V1H2, best of $REPS"
    SL=(); H2=(); sl_err=0; h2_e=""
    for rep in $(seq 1 "$REPS"); do
        out=$TMP/tput-h2c-splitlab-$rep
        "$SPLITLAB" load --target "$BACKEND_H2" --h2c --rate max --connections "$C" --duration "${TPUT_D}s" \
            --classify 'body:v1=v1,body:v2=v2' --expect v1=100 --out "$out" >"$out.log" 2>&1
        SL+=("$(jget "$out/summary.json" "d['requests']['served'] / $TPUT_D")")
        sl_err=$((sl_err + $(jget "$out/summary.json" "d['requests']['errors']")))
        echo "splitlab --h2c #$rep: served/duration = ${SL[-1]} req/s ($(jget "$out/summary.json" "d.get('protocol')"))"
        f=$TMP/h2load-tput-$rep.txt
        "$H2LOAD" -c "$C" -m 1 -D "$TPUT_D" "$BACKEND_H2" >"$f" 2>&1 || true
        H2+=("$(h2_rps "$f")"); e=$(h2_errors "$f"); h2_e+=${e:+" $e"}
        echo "h2load #$rep: ${H2[-1]} req/s${e:+ [$e]}"
    done
    sl_rps=$(best "${SL[@]}"); h=$(best "${H2[@]}")
    row "h2c throughput splitlab load --h2c" "$(printf '%.0f' "$sl_rps") req/s (runs: $(printf '%.0f ' "${SL[@]}")errors $sl_err)" "" ""
    row "h2c throughput h2load -c$C -m1" "$(printf '%.0f' "$h") req/s (runs: $(printf '%.0f ' "${H2[@]}" | sed 's/ $//'))${h2_e:+ [$h2_e]}" "" ""
    row "  ratio splitlab/h2load" "$(calc "round($sl_rps / $h, 2)")" "" ""
    echo
fi
if ((have_nginx)) && [[ -n "$H2LOAD" ]] && want gateway; then
    echo "== 4. h2c: gateway vs nginx (grpc_pass, h2c upstream): h2load -c$C -m1 -D$GW_D, :authority $HOST"
    start_gateway gateway-h2 "$P_V1H2" "$P_V2H2" "$P_GW_H2" 1
    GW2_PID=$GATEWAY_PID
    start_gateway gateway-h2-all "$P_V1H2" "$P_V2H2" "$P_GW_H2_ALL" ""
    GW2_ALL_PID=$GATEWAY_PID
    declare -A RPS2 P50_2 P99_2
    H2ADD50_gateway=(); H2ADD99_gateway=(); H2ADD50_nginx=(); H2ADD99_nginx=()
    H2ADD50_gateway_all=(); H2ADD99_gateway_all=(); H2RATIOS=(); H2RATIOS_all=()
    for rep in $(seq 1 "$GW_REPS"); do
        tag=$(round_tag "$rep")
        for t in direct:$P_V1H2 nginx:$P_NGLB_H2 gateway:$P_GW_H2 gateway-all:$P_GW_H2_ALL; do
            name=${t%%:*}; port=${t##*:}
            f=$TMP/h2load-$name-$rep.txt
            "$H2LOAD" -c "$C" -m 1 -D "$GW_D" -H ":authority: $HOST" --log-file "$f.log" \
                "http://127.0.0.1:$port/" >"$f" 2>&1 || true
            echo "-- h2c $name (:$port)$tag"; grep -E '^finished|^requests:|^status codes:|^time for request' "$f" || cat "$f"
            RPS2[$name]=$(h2_rps "$f"); P50_2[$name]=$(h2_pct_us "$f.log" 50); P99_2[$name]=$(h2_pct_us "$f.log" 99)
            e=$(h2_errors "$f")
            [[ -n "$e" ]] && echo "!! h2c $name: $e"
            row "h2load via $name$tag" "$(printf '%.0f' "${RPS2[$name]:-0}") req/s, p50 ${P50_2[$name]} µs, p99 ${P99_2[$name]} µs${e:+ [$e]}" "" ""
        done
        H2ADD50_gateway+=($((P50_2[gateway] - P50_2[direct]))); H2ADD99_gateway+=($((P99_2[gateway] - P99_2[direct])))
        H2ADD50_gateway_all+=($((P50_2[gateway-all] - P50_2[direct]))); H2ADD99_gateway_all+=($((P99_2[gateway-all] - P99_2[direct])))
        H2RATIOS+=("$(calc "${RPS2[gateway]:-0} / max(${RPS2[nginx]:-0}, 1e-9)")")
        H2RATIOS_all+=("$(calc "${RPS2[gateway-all]:-0} / max(${RPS2[nginx]:-0}, 1e-9)")")
        H2ADD50_nginx+=($((P50_2[nginx] - P50_2[direct]))); H2ADD99_nginx+=($((P99_2[nginx] - P99_2[direct])))
    done
    if ! kill -0 "$GW2_PID" 2>/dev/null; then
        echo "!! the h2c gateway exited during the run:"; cat "$TMP/gateway-h2.log"
    fi
    if ! kill -0 "$GW2_ALL_PID" 2>/dev/null; then
        echo "!! the h2c gateway (default workers) exited during the run:"; cat "$TMP/gateway-h2-all.log"
    fi
    for v in H2RATIOS:gateway H2RATIOS_all:gateway-all; do
        a=${v%%:*}[@]
        runs=""
        ((GW_REPS > 1)) && runs=" (median; rounds: $(printf '%.2f ' "${!a}" | sed 's/ $//'))"
        row "  h2c ratio ${v##*:}/nginx" "$(calc "round($(median "${!a}"), 2)")$runs" "" ""
    done
    for name in gateway gateway-all nginx; do
        v=${name//-/_}; a50=H2ADD50_$v[@]; a99=H2ADD99_$v[@]
        m50=$(printf '%.0f' "$(median "${!a50}")"); m99=$(printf '%.0f' "$(median "${!a99}")")
        runs=""
        ((GW_REPS > 1)) && runs=" (median; p99 rounds: $(printf '%+d ' "${!a99}" | sed 's/ $//'))"
        row "  h2c added latency $name vs direct" "$(printf 'p50 %+d µs, p99 %+d µs' "$m50" "$m99")$runs" "" ""
    done
    echo
elif ((have_nginx)); then
    skip "h2c" "h2load not found"
fi

# ---------------------------------------------------------------- summary
echo "== summary ($(nproc) cores, loopback, generator and servers on the same machine${QUICK:+, QUICK=$QUICK})"
{
    echo "measurement|result|target|verdict"
    printf '%s\n' "${SUMMARY[@]}"
} | column -t -s'|' -o'  ' 2>/dev/null || printf '%s\n' "${SUMMARY[@]}"

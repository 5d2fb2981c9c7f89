//! Integration tests of the charts: `run` writes every chart, each PNG decodes at 1200×800, each
//! SVG is well-formed, `plot` re-renders the same SVG bytes, a broken run directory is a clear
//! error, and `accuracy --out` writes its chart.

use crate::common::{assert_clear_error, splitlab, temp_dir, text};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHARTS: [&str; 6] = ["split", "queues", "outcomes", "latency", "pods", "routes"];

/// Asserts `path` is a PNG that decodes to 1200×800.
fn assert_png(path: &Path) {
    assert_png_sized(path, (1200, 800));
}

/// Asserts `path` is a PNG that decodes to `size` (width, height).
pub(crate) fn assert_png_sized(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}: no PNG signature",
        path.display()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header decodes");
    let (width, height) = (reader.info().width, reader.info().height);
    assert_eq!((width, height), size, "{}", path.display());
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    reader.next_frame(&mut buf).expect("PNG image data decodes");
}

/// Asserts `path` is an SVG document whose tags balance (a minimal XML check).
pub(crate) fn assert_svg(path: &Path) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body = svg.trim_start();
    assert!(
        body.starts_with("<svg") || body.starts_with("<?xml"),
        "{}: does not start as SVG",
        path.display()
    );
    let mut open: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .unwrap_or_else(|| panic!("{}: unclosed tag", path.display()))
            + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = |t: &str| {
            t.split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_string()
        };
        if let Some(closing) = tag.strip_prefix('/') {
            let expected = open.pop();
            assert_eq!(
                expected.as_deref(),
                Some(name(closing).as_str()),
                "{}: unbalanced tags",
                path.display()
            );
        } else {
            open.push(name(tag));
        }
    }
    assert!(open.is_empty(), "{}: unclosed {open:?}", path.display());
    assert!(svg.contains("</svg>"), "{}", path.display());
}

/// Asserts `path` is a self-contained HTML report: one inline `<svg` per chart, the scenario
/// name and every string of `numbers`, and no resource fetched over the network.
pub(crate) fn assert_report_html(path: &Path, charts: usize, scenario: &str, numbers: &[&str]) {
    let html = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", path.display());
    assert!(html.trim_end().ends_with("</html>"), "{}", path.display());
    assert_eq!(
        html.matches("<svg").count(),
        charts,
        "one inline SVG per chart"
    );
    assert_eq!(html.matches("</svg>").count(), charts);
    assert!(
        !html.contains("<?xml"),
        "no XML declaration inside the page"
    );
    assert!(html.contains(scenario), "names the scenario {scenario}");
    for n in numbers {
        assert!(html.contains(&format!(">{n}<")), "a table cell holds {n}");
    }
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        for quote in ["\"", "'", ""] {
            for scheme in ["http://", "https://", "//"] {
                let bad = format!("{attr}{quote}{scheme}");
                assert!(!lower.contains(&bad), "{}: {bad}", path.display());
            }
        }
    }
    assert!(!lower.contains("<img"), "charts are inline, not images");
    assert!(!lower.contains("<script"), "no scripts");
    assert!(!lower.contains("<link"), "no external stylesheets");
}

/// The Chromium binary, if this machine has one.
fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.exists() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    })
}

/// Renders `html` in headless Chromium and checks the screenshot is a real, non-blank PNG;
/// returns early (printing so) when Chromium is not installed.
fn render_in_chromium(html: &Path) {
    let Some(chromium) = chromium() else {
        println!(
            "skipped: chromium is not installed (render test of {})",
            html.display()
        );
        return;
    };
    let shot = html.with_file_name("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!(
        "file://{}",
        html.canonicalize().expect("absolute path").display()
    );
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000",
            &url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    // A 60 s timeout: a hung browser fails the test instead of hanging it.
    let deadline = 600;
    let mut waited = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if waited >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    };
    assert!(status.success(), "chromium failed: {status}");
    let bytes = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    // A blank page compresses to almost nothing; six charts do not.
    assert!(
        bytes.len() > 20_000,
        "screenshot is only {} bytes",
        bytes.len()
    );
    let _ = std::fs::remove_file(&shot);
}

#[test]
fn run_writes_every_chart_and_plot_rerenders_them_identically() {
    let dir = temp_dir("charts-run");
    let d = dir.to_str().expect("utf-8 path");
    let out = splitlab(&["run", "scenarios/manual-canary.yaml", "--out", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("charts: 12 files in"));
    let mut svgs = Vec::new();
    for name in CHARTS {
        assert_png(&dir.join(format!("{name}.png")));
        let svg = dir.join(format!("{name}.svg"));
        assert_svg(&svg);
        svgs.push(std::fs::read(&svg).expect("svg"));
    }
    let title = std::fs::read_to_string(dir.join("split.svg")).expect("svg");
    assert!(title.contains("split — manual-canary (seed 1)"));
    let summary = std::fs::read_to_string(dir.join("summary.json")).expect("summary");
    let arrived = summary
        .split("\"arrived\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .expect("requests.arrived in summary.json")
        .trim()
        .to_string();
    assert_report_html(
        &dir.join("report.html"),
        CHARTS.len(),
        "manual-canary",
        &[&arrived],
    );
    let html = std::fs::read_to_string(dir.join("report.html")).expect("html");
    assert!(
        html.contains("name: manual-canary"),
        "the scenario YAML from scenario.yaml"
    );
    // the page leads with the verdict: before any table, a sentence per revision
    let verdict = html.find("<section class=\"verdict\">").expect("a verdict");
    assert!(verdict < html.find("<table>").expect("tables"));
    for rev in ["hello-00001", "hello-00002"] {
        assert!(
            html[verdict..].contains(&format!("<p>{rev} received ")),
            "{rev} in the verdict"
        );
    }
    render_in_chromium(&dir.join("report.html"));

    // `plot` draws the same SVGs from the files alone.
    for name in CHARTS {
        std::fs::remove_file(dir.join(format!("{name}.svg"))).expect("remove");
    }
    let out = splitlab(&["plot", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (name, before) in CHARTS.iter().zip(&svgs) {
        let after = std::fs::read(dir.join(format!("{name}.svg"))).expect("re-rendered");
        assert!(&after == before, "{name}.svg differs after plot");
    }
    // `plot` rewrites report.html; without scenario.yaml it says the scenario is missing.
    std::fs::remove_file(dir.join("scenario.yaml")).expect("remove");
    let out = splitlab(&["plot", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_report_html(
        &dir.join("report.html"),
        CHARTS.len(),
        "manual-canary",
        &[&arrived],
    );
    let html = std::fs::read_to_string(dir.join("report.html")).expect("html");
    assert!(html.contains("The scenario is not available."));
    // No temp file is left behind.
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let name = entry.expect("entry").file_name();
        assert!(!name.to_string_lossy().ends_with(".tmp"), "{name:?}");
    }

    // A broken timeseries.csv is a clear error, exit 1, no panic.
    std::fs::write(
        dir.join("timeseries.csv"),
        "t_s,revision,programmed_pct\n0,a,lots\n",
    )
    .expect("write");
    assert_clear_error(
        &splitlab(&["plot", d]),
        "timeseries.csv: missing column \"routed\"",
        "plot",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A missing directory is said once, with its cause; an empty one names the file it lacks.
#[test]
fn plot_of_a_missing_directory_says_so_and_of_an_empty_one_names_the_file() {
    let dir = temp_dir("charts-missing");
    let d = dir.to_str().expect("utf-8");
    let out = splitlab(&["plot", d]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!("error: cannot plot {d}: No such file or directory (os error 2)\n")
    );
    std::fs::create_dir_all(&dir).expect("dir");
    let out = splitlab(&["plot", d]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("summary.json"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn accuracy_out_writes_its_chart_and_keeps_the_table() {
    let dir = temp_dir("charts-accuracy");
    let d = dir.to_str().expect("utf-8 path");
    let plain = splitlab(&[
        "accuracy",
        "--weights",
        "v1=90,v2=10",
        "--requests",
        "20000",
    ]);
    let out = splitlab(&[
        "accuracy",
        "--weights",
        "v1=90,v2=10",
        "--requests",
        "20000",
        "--out",
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The table is unchanged; the chart paths follow it.
    assert!(text(&out.stdout).starts_with(&text(&plain.stdout)));
    assert_png(&dir.join("accuracy.png"));
    assert_svg(&dir.join("accuracy.svg"));
    let svg = std::fs::read_to_string(dir.join("accuracy.svg")).expect("svg");
    for picker in ["picker: random", "picker: wrr", "picker: hash"] {
        assert!(svg.contains(picker), "{picker}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

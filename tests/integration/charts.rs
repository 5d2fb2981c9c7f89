//! Integration tests of the charts: `run` writes every chart, each PNG decodes at 1200×800, each
//! SVG is well-formed, `plot` re-renders the same SVG bytes, a broken run directory is a clear
//! error, and `accuracy --out` writes its chart.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CHARTS: [&str; 6] = ["split", "queues", "outcomes", "latency", "pods", "routes"];

fn splitlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the splitlab binary runs")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("splitlab-charts-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

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

#[test]
fn run_writes_every_chart_and_plot_rerenders_them_identically() {
    let dir = temp_dir("run");
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
    let out = splitlab(&["plot", d]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("timeseries.csv: missing column \"routed\""),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plot_of_a_missing_directory_names_the_file() {
    let dir = temp_dir("missing");
    let out = splitlab(&["plot", dir.to_str().expect("utf-8")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("summary.json"), "{stderr}");
}

#[test]
fn accuracy_out_writes_its_chart_and_keeps_the_table() {
    let dir = temp_dir("accuracy");
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

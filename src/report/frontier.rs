//! `advise`'s frontier chart: each SLO subject against the knob, with every seed's value, the
//! mean, the bound, and the recommendation marked.
//!
//! Owns: the chart's layout (one panel per SLO subject, stacked; the legend in a strip of its
//! own to the right, outside the data). Uses `chart`'s font, colours and PNG+SVG writer.
//!
//! Must not: compute anything a search did not give it; it only draws.
//!
//! Invariants: written as `frontier.png` and `frontier.svg`, `chart::WIDTH` wide and
//! `FRONTIER_PANEL_HEIGHT` per panel tall (at least `chart::HEIGHT`); the same curves give the
//! same bytes.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::{
    color, ensure_font, label_font, tick, title_font, write_both_sized, ChartError, Draw,
    DrawResult, HEIGHT, WIDTH,
};

/// The chart `render_frontier_chart` writes.
pub const FRONTIER_CHART: &str = "frontier";

/// Height of one panel, in pixels.
pub const FRONTIER_PANEL_HEIGHT: u32 = 340;

/// Width of the legend strip to the right of the panels.
const LEGEND_WIDTH: u32 = 290;

/// One evaluated knob value in one panel.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontierPoint {
    /// The knob value (seconds or units).
    pub x: f64,
    /// The mean over the seeds where the subject had a value.
    pub mean: Option<f64>,
    /// Each seed's value (seeds without one are left out).
    pub seeds: Vec<f64>,
    /// Whether the value met every SLO (not only this panel's).
    pub meets: bool,
}

/// One SLO subject's panel.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontierPanel {
    /// The metric name or summary path.
    pub subject: String,
    /// Every SLO on this subject: its text and its bound.
    pub bounds: Vec<(String, f64)>,
    /// In knob order.
    pub points: Vec<FrontierPoint>,
}

/// What `render_frontier_chart` draws.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontierCurves {
    pub title: String,
    /// The x axis' name (the knob path and its unit).
    pub x_desc: String,
    /// Appended to x tick labels (`s` for durations).
    pub x_suffix: String,
    pub seeds: usize,
    pub panels: Vec<FrontierPanel>,
    /// The recommended value and its label (`240s`).
    pub recommended: Option<(f64, String)>,
}

/// Writes `frontier.png` and `frontier.svg` into `dir` (which must exist).
pub fn render_frontier_chart(
    dir: &Path,
    curves: &FrontierCurves,
) -> Result<Vec<PathBuf>, ChartError> {
    ensure_font()?;
    let height = (FRONTIER_PANEL_HEIGHT * curves.panels.len().max(1) as u32 + 60).max(HEIGHT);
    write_both_sized(dir, FRONTIER_CHART, curves, (WIDTH, height))
}

const MET: RGBColor = RGBColor(0, 140, 70);
const FAILED: RGBColor = RGBColor(200, 30, 30);
const SEED: RGBColor = RGBColor(160, 160, 160);

impl Draw for FrontierCurves {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let area = area.titled(&self.title, title_font())?;
        let (w, _) = area.dim_in_pixel();
        let (plots, legend) = area.split_horizontally(w - LEGEND_WIDTH);
        let panels = plots.split_evenly((self.panels.len().max(1), 1));
        let xs = self
            .panels
            .iter()
            .flat_map(|p| p.points.iter().map(|q| q.x));
        let (x_lo, x_hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        let (x_lo, x_hi) = if x_lo.is_finite() {
            (x_lo, x_hi)
        } else {
            (0.0, 1.0)
        };
        let pad = ((x_hi - x_lo) * 0.04).max(0.5);
        for (panel, cell) in self.panels.iter().zip(&panels) {
            self.draw_panel(cell, panel, (x_lo - pad, x_hi + pad))?;
        }
        self.draw_legend(&legend)
    }
}

impl FrontierCurves {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &FrontierPanel,
        x: (f64, f64),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let ys = panel
            .points
            .iter()
            .flat_map(|p| p.seeds.iter().copied().chain(p.mean))
            .chain(panel.bounds.iter().map(|(_, b)| *b))
            .filter(|v| v.is_finite());
        let (lo, hi) = ys.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let bottom = if lo < 0.0 { lo * 1.1 } else { 0.0 };
        let top = hi * 1.1;
        let suffix = self.x_suffix.clone();
        let caption = format!(
            "{} (SLO {})",
            panel.subject,
            panel
                .bounds
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, label_font())
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(x.0..x.1, bottom..top)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&panel.subject)
            .x_label_formatter(&|v: &f64| format!("{}{suffix}", tick(*v)))
            .y_label_formatter(&|v: &f64| tick(*v))
            .axis_desc_style(label_font())
            .label_style(("sans-serif", 15).into_font())
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        // every seed, then the mean line, then each value's verdict marker
        chart.draw_series(panel.points.iter().flat_map(|p| {
            p.seeds
                .iter()
                .map(move |&y| Circle::new((p.x, y), 3, SEED.filled()))
        }))?;
        let means: Vec<(f64, f64)> = panel
            .points
            .iter()
            .filter_map(|p| Some((p.x, p.mean?)))
            .collect();
        chart.draw_series(LineSeries::new(means, color(0).stroke_width(2)))?;
        for p in &panel.points {
            let Some(y) = p.mean else { continue };
            if p.meets {
                chart.draw_series(std::iter::once(Circle::new((p.x, y), 5, MET.filled())))?;
            } else {
                chart.draw_series(std::iter::once(Cross::new(
                    (p.x, y),
                    5,
                    FAILED.stroke_width(2),
                )))?;
            }
        }
        for (_, bound) in &panel.bounds {
            chart.draw_series(DashedLineSeries::new(
                vec![(x.0, *bound), (x.1, *bound)],
                10,
                6,
                FAILED.stroke_width(2),
            ))?;
        }
        if let Some((r, _)) = &self.recommended {
            chart.draw_series(LineSeries::new(
                vec![(*r, bottom), (*r, top)],
                MET.stroke_width(3),
            ))?;
        }
        Ok(())
    }

    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let font = label_font();
        let x0 = 16i32;
        let mut y = 70i32;
        let text = |area: &DrawingArea<DB, Shift>, y: i32, s: &str| {
            area.draw(&Text::new(s.to_string(), (x0 + 34, y - 9), font.clone()))
        };
        // one seed
        area.draw(&Circle::new((x0 + 12, y), 3, SEED.filled()))?;
        text(area, y, "one seed")?;
        y += 32;
        area.draw(&PathElement::new(
            vec![(x0, y), (x0 + 24, y)],
            color(0).stroke_width(2),
        ))?;
        text(area, y, &format!("mean over {} seeds", self.seeds))?;
        y += 32;
        area.draw(&Circle::new((x0 + 12, y), 5, MET.filled()))?;
        text(area, y, "value met every SLO")?;
        y += 32;
        area.draw(&Cross::new((x0 + 12, y), 5, FAILED.stroke_width(2)))?;
        text(area, y, "value failed an SLO")?;
        y += 32;
        area.draw(&PathElement::new(
            vec![(x0, y), (x0 + 10, y)],
            FAILED.stroke_width(2),
        ))?;
        area.draw(&PathElement::new(
            vec![(x0 + 16, y), (x0 + 26, y)],
            FAILED.stroke_width(2),
        ))?;
        text(area, y, "the SLO's bound")?;
        y += 32;
        area.draw(&PathElement::new(
            vec![(x0, y), (x0 + 24, y)],
            MET.stroke_width(3),
        ))?;
        let label = match &self.recommended {
            Some((_, l)) => format!("recommended: {l}"),
            None => "no value met the SLOs".to_string(),
        };
        text(area, y, &label)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_written_with_every_panel_and_the_legend() {
        let dir = std::env::temp_dir().join(format!("splitlab-frontier-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let point = |x: f64, y: f64, meets: bool| FrontierPoint {
            x,
            mean: Some(y),
            seeds: vec![y - 1.0, y + 1.0],
            meets,
        };
        let curves = FrontierCurves {
            title: "advise — demo".to_string(),
            x_desc: "service.rollout_duration (s)".to_string(),
            x_suffix: "s".to_string(),
            seeds: 2,
            panels: vec![
                FrontierPanel {
                    subject: "p99_shift_ms".to_string(),
                    bounds: vec![("p99_shift_ms<=800".to_string(), 800.0)],
                    points: vec![point(0.0, 2000.0, false), point(240.0, 700.0, true)],
                },
                FrontierPanel {
                    subject: "expired".to_string(),
                    bounds: vec![("expired==0".to_string(), 0.0)],
                    points: vec![point(0.0, 3.0, false), point(240.0, 0.0, true)],
                },
            ],
            recommended: Some((240.0, "240s".to_string())),
        };
        let written = render_frontier_chart(&dir, &curves).expect("chart");
        assert_eq!(written.len(), 2);
        let svg = std::fs::read_to_string(dir.join("frontier.svg")).expect("svg");
        for needle in [
            "advise — demo",
            "p99_shift_ms (SLO p99_shift_ms&lt;=800)",
            "expired (SLO expired==0)",
            "recommended: 240s",
            "mean over 2 seeds",
            "240s",
        ] {
            assert!(svg.contains(needle), "{needle} in the SVG");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

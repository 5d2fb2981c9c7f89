//! `splitlab plan SCENARIO [--regression SPEC]... [--grid PATH=V1,V2,...]... [--seeds N]
//! [--power P] [--max-false-rollback Q] [--jobs J] [--out DIR]`: how likely each Flagger
//! analysis setting is to catch a regressed canary, how fast it promotes a healthy one, and how
//! often it rolls back a good one (issue 13 §2).
//!
//! A policy on the sweep engine (`cli::sweep`): the cells are setting × variant, the variants
//! being the healthy canary and the canary under each regression; seed k is the scenario seed
//! of run k in every cell (common random numbers). The statistics, the analytic probability
//! and the recommendation are `report::plan`'s.
//!
//! The canary is the revision Flagger analyses: the one the timeline's last `create_revision`
//! creates (`latestCreatedRevisionName`, `report::analysis`). A variant replaces that revision's
//! `failure:` block: healthy clears it, a regression sets it to `error_rate=F` or a latency
//! multiplier. Without `--regression`, the regression is the scenario canary's own failure.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::model::failure::FailureSpec;
use crate::model::time::SimTime;
use crate::report::chart::{render_plan_chart, PlanCurves, PLAN_CHART};
use crate::report::html::{Page, Table, REPORT_FILE};
use crate::report::plan::{
    analytic_rollback_prob, plan_csv, recommend, AnalyticTraffic, PlanRow, Regression, SeedOutcome,
    PLAN_FILE,
};
use crate::report::write::write_atomic;
use crate::scenario::spec::{Action, ArrivalProcessSpec};
use crate::scenario::Scenario;

use super::run::ScenarioSource;
use super::sweep;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file; it must have an `analysis:` block and create the canary on its
    /// timeline.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// A regression applied to the canary: error_rate=F (0 < F <= 1) or latency=Mx (the
    /// service time × M); repeatable. Default: the scenario canary's own failure.
    #[arg(long, value_name = "SPEC")]
    regression: Vec<String>,
    /// A scenario value and the values to try, by dotted path, as compare's --set (e.g.
    /// analysis.canary.stepWeight=5,10,20); repeatable: the grid is the product of all lists.
    #[arg(long, value_name = "PATH=V1,V2,...", allow_hyphen_values = true)]
    grid: Vec<String>,
    /// Seeds 1..=N are run for every setting and variant.
    #[arg(long, value_name = "N", default_value_t = 20)]
    seeds: u64,
    /// The detection probability a recommended setting must reach for every regression.
    #[arg(long, value_name = "P", default_value_t = 0.9)]
    power: f64,
    /// The largest false-rollback probability a recommended setting may have.
    #[arg(long, value_name = "Q", default_value_t = 0.05)]
    max_false_rollback: f64,
    /// Runs at once (default: the number of available cores).
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// Output directory (default: out/<scenario name>-plan).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    shard: sweep::ShardArgs,
}

impl Args {
    /// The arguments that define the grid, as a shard's header records them (parsing them
    /// again after `plan SCENARIO` gives the same grid).
    fn grid_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .regression
            .iter()
            .map(|s| format!("--regression={s}"))
            .collect();
        args.extend(self.grid.iter().map(|s| format!("--grid={s}")));
        args.push(format!("--seeds={}", self.seeds));
        // Display of an f64 is the shortest text that parses back to it.
        args.push(format!("--power={}", self.power));
        args.push(format!("--max-false-rollback={}", self.max_false_rollback));
        args
    }
}

/// What plan keeps of a run (and a shard writes of it).
#[derive(PartialEq, serde::Serialize, serde::Deserialize)]
struct PlanRun {
    outcome: Option<SeedOutcome>,
    warnings: Vec<String>,
    accounting_ok: bool,
}

/// The grid of a plan: settings × variants × seeds, and what `finish` needs of each setting.
struct Grid {
    source: ScenarioSource,
    seeds: usize,
    settings: Vec<sweep::LoadedSetting>,
    planned: Vec<Planned>,
    regression_labels: Vec<String>,
}

impl Grid {
    fn new(args: &Args, source: ScenarioSource) -> anyhow::Result<Self> {
        let seeds = sweep::seeds(args.seeds)?;
        for (flag, v) in [
            ("--power", args.power),
            ("--max-false-rollback", args.max_false_rollback),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{flag} {v} is not allowed; allowed: a probability from 0 to 1");
            }
        }
        let given = args
            .regression
            .iter()
            .map(|s| Regression::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = sweep::load_settings(&source, "--grid", &args.grid)?;
        let mut labels = Vec::new();
        let mut planned = Vec::with_capacity(settings.len());
        for s in &settings {
            let label = &s.setting.label;
            let p =
                plan_setting(&s.scenario, &given).with_context(|| format!("setting {label}"))?;
            labels.push(p.1);
            planned.push(p.0);
        }
        // Without --regression the label is the first setting's canary failure.
        let regression_labels: Vec<String> = match given.is_empty() {
            true => vec![labels[0].clone()],
            false => given.iter().map(|r| r.label.clone()).collect(),
        };
        Ok(Grid {
            source,
            seeds,
            settings,
            planned,
            regression_labels,
        })
    }

    /// Healthy, then one per regression.
    fn variants(&self) -> usize {
        1 + self.regression_labels.len()
    }

    fn cells(&self) -> usize {
        self.settings.len() * self.variants()
    }
}

/// A setting's canary and the variants run for it.
struct Planned {
    /// The canary's creation, for the times to detect and promote.
    created: SimTime,
    /// Healthy first, then one per regression.
    variants: Vec<Scenario>,
    /// The regressions' failure blocks, in order (for the analytic figure).
    regressions: Vec<FailureSpec>,
    analytic: Option<AnalyticTraffic>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let part = args.shard.part()?;
    let jobs = sweep::jobs(args.jobs)?;
    let grid = Grid::new(args, ScenarioSource::read(&args.scenario)?)?;
    let out = args.out.clone().unwrap_or_else(|| {
        Path::new("out").join(format!("{}-plan", grid.settings[0].scenario.name))
    });
    let variants = grid.variants();
    let results = sweep::run_grid_part(
        grid.cells(),
        grid.seeds,
        jobs,
        part.as_ref().map(|p| p.0),
        |cell, seed| {
            let p = &grid.planned[cell / variants];
            let run = sweep::simulate_seed(&p.variants[cell % variants], seed);
            let outcome = run.report.analysis().map(|a| {
                SeedOutcome::new(
                    &a.phase,
                    a.finished_s,
                    a.promoted_s,
                    a.canary_failed_requests,
                    p.created.as_secs_f64(),
                )
            });
            PlanRun {
                outcome,
                warnings: run.warnings,
                accounting_ok: run.report.accounting_ok(),
            }
        },
    )?;
    match part {
        Some(part) => {
            sweep::write_shard(
                "plan",
                args.grid_args(),
                &grid.source,
                grid.cells() * grid.seeds,
                part,
                &out,
                &results,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        None => finish(args, grid, &out, results),
    }
}

/// `splitlab merge` of plan shards: the outputs of the whole grid from its kept results.
pub(crate) fn merge(input: &sweep::MergeInput, out: &Path) -> anyhow::Result<ExitCode> {
    let super::Command::Plan(args) = super::reparse("plan", &input.grid)? else {
        unreachable!("reparse parses the command it is given")
    };
    let grid = Grid::new(&args, input.scenario())?;
    let results = input.results(grid.cells() * grid.seeds)?;
    finish(&args, grid, out, results)
}

/// Writes the outputs of the whole grid from every run's kept result, in run order: the one
/// code path of a single process and of `merge`.
fn finish(args: &Args, grid: Grid, out: &Path, results: Vec<PlanRun>) -> anyhow::Result<ExitCode> {
    let variants = grid.variants();
    let Grid {
        source,
        seeds,
        settings,
        planned,
        regression_labels,
    } = grid;
    let mut outcomes: Vec<SeedOutcome> = Vec::with_capacity(results.len());
    let mut warned = sweep::WarnOnce::default();
    for (
        i,
        PlanRun {
            outcome,
            warnings,
            accounting_ok,
        },
    ) in results.into_iter().enumerate()
    {
        let label = &settings[i / seeds / variants].setting.label;
        if !accounting_ok {
            bail!(
                "internal error: request accounting does not balance (setting {label}, seed \
                 {}); outputs not written",
                i % seeds + 1
            );
        }
        warned.warn(label, warnings);
        outcomes.push(outcome.expect("every plan scenario has an analysis (checked above)"));
    }
    let cell = |s: usize, v: usize| {
        let at = (s * variants + v) * seeds;
        &outcomes[at..at + seeds]
    };
    let mut rows = Vec::new();
    for (s, setting) in settings.iter().enumerate() {
        let p = &planned[s];
        for (r, label) in regression_labels.iter().enumerate() {
            let failure = &p.regressions[r];
            // The analytic figure covers a regression of the success rate alone.
            let analytic = p.analytic.as_ref().and_then(|t| {
                let only_errors = FailureSpec {
                    error_rate: failure.error_rate,
                    error_status: failure.error_status,
                    ..FailureSpec::default()
                } == *failure;
                let analysis = p.variants[0].analysis.as_ref()?;
                only_errors
                    .then(|| analytic_rollback_prob(&analysis.settings, t, failure.error_rate))
                    .flatten()
            });
            rows.push(PlanRow::new(
                &setting.setting.label,
                label,
                cell(s, 0),
                cell(s, r + 1),
                analytic,
            ));
        }
    }
    let setting_labels: Vec<String> = settings.iter().map(|s| s.setting.label.clone()).collect();
    let pick = recommend(&setting_labels, &rows, args.power, args.max_false_rollback);
    let sentences = sentences(&rows, &setting_labels, pick, args);

    // Every file goes to a staging directory first and reaches `out` in one commit, so an
    // interrupted plan never mixes its files with an earlier one's.
    let staged = super::run::stage(out)?;
    let dir = staged.path();
    let csv = plan_csv(&rows);
    write_atomic(dir, PLAN_FILE, |w| w.write_all(csv.as_bytes()))
        .with_context(|| format!("cannot write {}", out.join(PLAN_FILE).display()))?;
    let curves = PlanCurves {
        scenario: settings[0].scenario.name.clone(),
        seeds,
        settings: setting_labels.clone(),
        regressions: regression_labels.clone(),
        rows: rows.clone(),
        power: args.power,
        recommended: pick,
    };
    render_plan_chart(dir, &curves).with_context(|| {
        format!(
            "{PLAN_FILE} is written to {} but its chart is not",
            out.display()
        )
    })?;
    let chart = super::chart_svg(dir, PLAN_CHART)?;
    super::write_report(
        dir,
        &Page {
            title: format!(
                "splitlab plan — {} ({} settings × {} regressions × {seeds} seeds)",
                curves.scenario,
                setting_labels.len(),
                regression_labels.len()
            ),
            scenario_yaml: Some(source.text),
            sentences: sentences.clone(),
            tables: vec![plan_table(&rows)],
            charts: vec![chart],
            ..Page::default()
        },
    )?;
    staged
        .commit(&[])
        .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    for sentence in &sentences {
        say!("{sentence}")?;
    }
    say!(
        "outputs: {} ({PLAN_FILE}, {PLAN_CHART}.png, {PLAN_CHART}.svg, {REPORT_FILE})",
        out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The canary of `scenario`, its variants, and the label of its own failure.
fn plan_setting(scenario: &Scenario, given: &[Regression]) -> anyhow::Result<(Planned, String)> {
    let Some(analysis) = &scenario.analysis else {
        bail!(
            "scenario {} has no analysis: block; plan needs Flagger's analysis (see \
             docs/plan.md)",
            scenario.name
        );
    };
    let canary = scenario.timeline.iter().rev().find_map(|e| match e.action {
        Action::CreateRevision(r) => Some((r, e.at)),
        _ => None,
    });
    let Some((canary, created)) = canary else {
        bail!(
            "scenario {} creates no revision on its timeline; the canary Flagger analyses is \
             the last revision a create_revision event creates",
            scenario.name
        );
    };
    let name = scenario.revisions[canary].name.clone();
    if created <= analysis.start {
        bail!(
            "the canary {name} is created at {}s, not after analysis.start ({}s): Flagger \
             would take it for the primary",
            created.as_secs_f64(),
            analysis.start.as_secs_f64()
        );
    }
    if let Some(e) = scenario
        .timeline
        .iter()
        .find(|e| matches!(&e.action, Action::SetFailure { revision, .. } if *revision == canary))
    {
        bail!(
            "the timeline changes the canary {name}'s failure at {}s; plan sets the canary's \
             failure itself (healthy, then each regression): remove that event",
            e.at.as_secs_f64()
        );
    }
    let own = scenario.revisions[canary].failure.clone();
    let own_label = Regression::from_scenario(&own).label;
    let regressions: Vec<FailureSpec> = if given.is_empty() {
        if own.is_healthy() {
            bail!(
                "no --regression given and the canary {name} is healthy in the scenario; give \
                 one, e.g. --regression error_rate=0.02 or --regression latency=1.5x"
            );
        }
        vec![own]
    } else {
        given.iter().map(|r| r.failure.clone()).collect()
    };
    let with = |failure: FailureSpec| {
        let mut s = scenario.clone();
        s.revisions[canary].failure = failure;
        s
    };
    let mut variants = vec![with(FailureSpec::default())];
    variants.extend(regressions.iter().cloned().map(with));
    let rate = match &scenario.arrivals.process {
        ArrivalProcessSpec::Poisson { rate_per_s }
        | ArrivalProcessSpec::Constant { rate_per_s } => Some(*rate_per_s),
        _ => None,
    };
    let analytic = rate.map(|rate_per_s| AnalyticTraffic {
        start: analysis.start,
        created,
        end: SimTime::ZERO + scenario.duration,
        rate_per_s,
    });
    Ok((
        Planned {
            created,
            variants,
            regressions,
            analytic,
        },
        own_label,
    ))
}

/// What the command prints and the page lists: each setting's figures, then the
/// recommendation.
fn sentences(
    rows: &[PlanRow],
    settings: &[String],
    pick: Option<usize>,
    args: &Args,
) -> Vec<String> {
    let secs = |x: Option<f64>| x.map_or("never".to_string(), |v| format!("{v:.0} s"));
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            let analytic = r
                .analytic_detect_prob
                .map_or(String::new(), |a| format!(" (analytic {a:.3})"));
            format!(
                "{} vs {}: detects {:.3} [{:.3}, {:.3}]{analytic} in {} (median), promotes a \
                 healthy canary in {}, false rollbacks {:.3}, {:.1} requests hurt",
                r.setting,
                r.regression,
                r.detect_prob,
                r.detect_ci95.0,
                r.detect_ci95.1,
                secs(r.median_detect_s),
                secs(r.median_promote_s),
                r.false_rollback_prob,
                r.requests_hurt_mean,
            )
        })
        .collect();
    out.push(match pick {
        Some(i) => format!(
            "recommended: {} (the fastest to promote with detection >= {} for every regression \
             and false rollbacks <= {})",
            settings[i], args.power, args.max_false_rollback
        ),
        None => format!(
            "no setting detects every regression with probability >= {} while rolling back a \
             healthy canary with probability <= {} and promoting it within the run",
            args.power, args.max_false_rollback
        ),
    });
    out
}

/// `plan.csv` as a table for report.html.
fn plan_table(rows: &[PlanRow]) -> Table {
    let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.3}"));
    Table {
        caption: format!("{PLAN_FILE}: per setting and regression"),
        header: [
            "setting",
            "regression",
            "seeds",
            "detect prob [95% Wilson]",
            "analytic",
            "false rollback",
            "median detect (s)",
            "median promote (s)",
            "requests hurt (mean)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.setting.clone(),
                    r.regression.clone(),
                    r.seeds.to_string(),
                    format!(
                        "{:.3} [{:.3}, {:.3}]",
                        r.detect_prob, r.detect_ci95.0, r.detect_ci95.1
                    ),
                    num(r.analytic_detect_prob),
                    format!("{:.3}", r.false_rollback_prob),
                    num(r.median_detect_s),
                    num(r.median_promote_s),
                    format!("{:.1}", r.requests_hurt_mean),
                ]
            })
            .collect(),
    }
}

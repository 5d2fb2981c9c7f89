//! From series to scenario values: time bins, rates per revision and tag, the split, the
//! latency histogram, pod counts and start-up lags.
//!
//! Owns: the arithmetic, each step a pure function with its own tests.
//!
//! Must not: know where series came from or how the scenario is written.

use std::collections::BTreeMap;

use super::promjson::Series;

/// The time bins values are averaged into: `[from + k·step, from + (k+1)·step)` for
/// `k < count`, the last one also holding `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bins {
    pub from: f64,
    pub to: f64,
    pub step_s: f64,
    pub count: usize,
}

impl Bins {
    pub fn new(from: f64, to: f64, step_s: f64) -> Self {
        let count = (((to - from) / step_s).floor() as usize).max(1);
        Bins {
            from,
            to,
            step_s,
            count,
        }
    }

    /// The bin of unix time `t`, `None` outside `[from, to]`.
    pub fn of(&self, t: f64) -> Option<usize> {
        if t < self.from || t > self.to {
            return None;
        }
        Some((((t - self.from) / self.step_s).floor() as usize).min(self.count - 1))
    }

    /// Seconds from `from` to the start of bin `k`.
    pub fn start_s(&self, k: usize) -> f64 {
        k as f64 * self.step_s
    }
}

/// Each bin's sum and count of the series' finite samples (`NaN` and `±Inf` skipped).
fn bin_sums(series: &Series, bins: &Bins) -> (Vec<f64>, Vec<u32>) {
    let mut sum = vec![0.0; bins.count];
    let mut n = vec![0u32; bins.count];
    for (t, v) in &series.points {
        if let (Some(k), true) = (bins.of(*t), v.is_finite()) {
            sum[k] += v;
            n[k] += 1;
        }
    }
    (sum, n)
}

/// A series' finite values averaged per bin (0 where it has none: a rate series that is absent
/// has nothing to count). Non-finite samples (`NaN`, `±Inf`) are skipped.
pub fn binned(series: &Series, bins: &Bins) -> Vec<f64> {
    let (sum, n) = bin_sums(series, bins);
    sum.iter()
        .zip(&n)
        .map(|(s, n)| if *n == 0 { 0.0 } else { s / f64::from(*n) })
        .collect()
}

/// A gauge series' finite values averaged per bin, where a bin without a sample holds the
/// gauge's last value before it, and bins before its first sample hold that first value: a
/// gauge not yet scraped (Prometheus sees a target only from its first scrape, and a series only
/// once it was first recorded) has not dropped to 0. A series without any finite sample is 0.
pub fn gauge_binned(series: &Series, bins: &Bins) -> Vec<f64> {
    let (sum, n) = bin_sums(series, bins);
    let first = sum
        .iter()
        .zip(&n)
        .find(|(_, n)| **n > 0)
        .map_or(0.0, |(s, n)| s / f64::from(*n));
    let mut last = first;
    sum.iter()
        .zip(&n)
        .map(|(s, n)| {
            if *n > 0 {
                last = s / f64::from(*n);
            }
            last
        })
        .collect()
}

/// Sums gauge series by the value of `label`, each binned by `gauge_binned`.
pub fn gauge_by_label(series: &[Series], label: &str, bins: &Bins) -> BTreeMap<String, Vec<f64>> {
    sum_by_label(series, label, bins, gauge_binned)
}

/// Sums binned series by the value of `label` (a PromQL `sum by (label)` over the bins).
pub fn by_label(series: &[Series], label: &str, bins: &Bins) -> BTreeMap<String, Vec<f64>> {
    sum_by_label(series, label, bins, binned)
}

/// Sums series by the value of `label`, each binned by `bin`.
fn sum_by_label(
    series: &[Series],
    label: &str,
    bins: &Bins,
    bin: fn(&Series, &Bins) -> Vec<f64>,
) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in series {
        let b = bin(s, bins);
        let acc = out
            .entry(s.label(label).to_string())
            .or_insert_with(|| vec![0.0; bins.count]);
        for (a, v) in acc.iter_mut().zip(b) {
            *a += v;
        }
    }
    out
}

/// Whether any sample of the series lies in `[from, to]` with a finite value.
pub fn has_values_in(series: &[Series], from: f64, to: f64) -> bool {
    series.iter().any(|s| {
        s.points
            .iter()
            .any(|(t, v)| *t >= from && *t <= to && v.is_finite())
    })
}

/// The first and last sample times of all series (`None`: no samples).
pub fn time_span(series: &[Series]) -> Option<(f64, f64)> {
    let mut span: Option<(f64, f64)> = None;
    for (t, _) in series.iter().flat_map(|s| &s.points) {
        span = Some(match span {
            None => (*t, *t),
            Some((a, b)) => (a.min(*t), b.max(*t)),
        });
    }
    span
}

/// The query step the samples were taken at: the smallest gap between consecutive samples of
/// one series (`None` when no series has two samples).
pub fn sample_step(series: &[Series]) -> Option<f64> {
    series
        .iter()
        .flat_map(|s| s.points.windows(2).map(|w| w[1].0 - w[0].0))
        .filter(|d| *d > 0.0)
        .min_by(f64::total_cmp)
}

/// Shares (any non-negative weights) as whole percents summing to 100, by the largest
/// remainder (ties to the earlier entry); all zero when the weights are.
pub fn percents(weights: &[f64]) -> Vec<u32> {
    let total: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    if total <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| w.max(0.0) / total * 100.0).collect();
    let mut pct: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let given: u32 = pct.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| {
        let ra = exact[*a] - exact[*a].floor();
        let rb = exact[*b] - exact[*b].floor();
        rb.total_cmp(&ra).then(a.cmp(b))
    });
    for i in order
        .into_iter()
        .take(100u32.saturating_sub(given) as usize)
    {
        pct[i] += 1;
    }
    pct
}

/// The split over time: `(bin, percents)` for the first bin with traffic and then for every
/// bin whose split differs from the one in force by `threshold` points or more in some
/// revision, each with the split of all the bins until the next. `rates[r][k]` is revision
/// r's rate in bin k.
pub fn split_changes(rates: &[Vec<f64>], bins: usize, threshold: u32) -> Vec<(usize, Vec<u32>)> {
    let mut out: Vec<(usize, Vec<u32>)> = Vec::new();
    for k in 0..bins {
        let weights: Vec<f64> = rates.iter().map(|r| r[k]).collect();
        if weights.iter().all(|w| *w <= 0.0) {
            continue;
        }
        let pct = percents(&weights);
        let moved = match out.last() {
            None => true,
            Some((_, current)) => current
                .iter()
                .zip(&pct)
                .any(|(a, b)| a.abs_diff(*b) >= threshold),
        };
        if moved {
            out.push((k, pct));
        }
    }
    // Each block gets the split of all its bins together, which noise disturbs less than the
    // split of the bin where it started; blocks that then agree are one.
    let starts: Vec<usize> = out.iter().map(|(k, _)| *k).collect();
    let mut averaged: Vec<(usize, Vec<u32>)> = Vec::with_capacity(starts.len());
    for (i, start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(bins);
        let sums: Vec<f64> = rates.iter().map(|r| r[*start..end].iter().sum()).collect();
        let pct = percents(&sums);
        if averaged.last().is_none_or(|(_, prev)| *prev != pct) {
            averaged.push((*start, pct));
        }
    }
    averaged
}

/// A revision's latency histogram from `_bucket` rate series: `(le in seconds or None for
/// +Inf, cumulative count)`, in bound order, made non-decreasing as `histogram_quantile` does
/// (promql/quantile.go `ensureMonotonic`). A rate summed over the bins times the bin width is
/// the count of requests in the range. Series whose `le` does not parse are returned apart.
pub fn histogram(
    series: &[&Series],
    bins: &Bins,
    unit_s: f64,
) -> (Vec<(Option<f64>, f64)>, Vec<String>) {
    let mut by_le: BTreeMap<String, f64> = BTreeMap::new();
    for s in series {
        let total: f64 = binned(s, bins).iter().sum::<f64>() * bins.step_s;
        *by_le.entry(s.label("le").to_string()).or_insert(0.0) += total;
    }
    let mut bad = Vec::new();
    let mut buckets: Vec<(Option<f64>, f64)> = Vec::new();
    for (le, count) in by_le {
        match super::promjson::parse_sample_value(&le) {
            Some(v) if v == f64::INFINITY => buckets.push((None, count)),
            Some(v) if v.is_finite() && v >= 0.0 => buckets.push((Some(v * unit_s), count)),
            _ => bad.push(le),
        }
    }
    buckets.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let mut running = 0.0_f64;
    for b in &mut buckets {
        running = running.max(b.1);
        b.1 = running;
    }
    (buckets, bad)
}

/// How long pods took to become Ready: for every bin where the requested pods rose, the time
/// until the ready pods first reached the new request (skipped when they never did within the
/// range). In seconds, at the bins' resolution.
pub fn startup_lags(requested: &[f64], ready: &[f64], step_s: f64) -> Vec<f64> {
    let mut lags = Vec::new();
    for k in 1..requested.len() {
        let target = requested[k].round();
        if target <= requested[k - 1].round() {
            continue;
        }
        if let Some(j) = (k..ready.len()).find(|j| ready[*j].round() >= target) {
            lags.push((j - k) as f64 * step_s);
        }
    }
    lags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], points: &[(f64, f64)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn gauges_hold_their_value_where_no_sample_is() {
        let bins = Bins::new(0.0, 60.0, 10.0);
        // (samples, per-bin gauge) — 6 bins: [0,10) .. [50,60]
        type Case<'a> = (&'a [(f64, f64)], [f64; 6]);
        let cases: [Case; 4] = [
            // first scraped at 25 s: the bins before hold its first value, not 0
            (
                &[(25.0, 2.0), (35.0, 2.0), (45.0, 3.0)],
                [2.0, 2.0, 2.0, 2.0, 3.0, 3.0],
            ),
            // a gap is the last value, not 0; a real 0 stays 0
            (&[(5.0, 1.0), (35.0, 0.0)], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]),
            // samples in one bin average; non-finite ones are skipped
            (&[(0.0, 1.0), (5.0, 3.0), (15.0, f64::NAN)], [2.0; 6]),
            // no finite sample at all: 0
            (&[(15.0, f64::NAN)], [0.0; 6]),
        ];
        for (points, want) in cases {
            assert_eq!(
                gauge_binned(&series(&[], points), &bins),
                want,
                "{points:?}"
            );
        }
        // two series of one revision add up bin by bin
        let s = [
            series(&[("revision_name", "a")], &[(25.0, 2.0)]),
            series(&[("revision_name", "a")], &[(5.0, 1.0)]),
        ];
        assert_eq!(
            gauge_by_label(&s, "revision_name", &bins)["a"],
            vec![3.0; 6]
        );
    }

    #[test]
    fn bins_average_finite_samples() {
        let bins = Bins::new(100.0, 160.0, 15.0);
        assert_eq!(bins.count, 4);
        // (time, bin)
        for (t, want) in [
            (99.0, None),
            (100.0, Some(0)),
            (114.9, Some(0)),
            (115.0, Some(1)),
            // `to` itself falls in the last bin
            (160.0, Some(3)),
            (160.5, None),
        ] {
            assert_eq!(bins.of(t), want, "{t}");
        }
        let s = series(
            &[],
            &[
                (100.0, 2.0),
                (107.0, 4.0),
                (115.0, f64::NAN),
                (130.0, f64::INFINITY),
                (145.0, 1.0),
                (160.0, 3.0),
            ],
        );
        // bin 0 averages two samples; bins 1 and 2 hold only non-finite ones (0); bin 3 two
        assert_eq!(binned(&s, &bins), vec![3.0, 0.0, 0.0, 2.0]);
        // a coarser step of 30 s over the same samples
        let coarse = Bins::new(100.0, 160.0, 30.0);
        assert_eq!(binned(&s, &coarse), vec![3.0, 2.0]);
    }

    #[test]
    fn rates_sum_by_label_and_missing_series_count_zero() {
        let bins = Bins::new(0.0, 30.0, 15.0);
        let s = [
            series(
                &[("revision_name", "a"), ("route_tag", "DEFAULT")],
                &[(0.0, 8.0), (15.0, 8.0)],
            ),
            series(
                &[("revision_name", "a"), ("route_tag", "x")],
                &[(15.0, 1.0)],
            ),
            series(&[("revision_name", "b")], &[(0.0, 2.0), (15.0, f64::NAN)]),
        ];
        let by_rev = by_label(&s, "revision_name", &bins);
        assert_eq!(by_rev["a"], vec![8.0, 9.0]);
        assert_eq!(by_rev["b"], vec![2.0, 0.0], "NaN counts nothing");
        let by_tag = by_label(&s, "route_tag", &bins);
        assert_eq!(
            by_tag[""],
            vec![2.0, 0.0],
            "a missing label is the empty value"
        );
        assert!(has_values_in(&s, 10.0, 20.0));
        assert!(!has_values_in(&s[2..], 10.0, 20.0), "only a NaN there");
        assert_eq!(time_span(&s), Some((0.0, 15.0)));
        assert_eq!(sample_step(&s), Some(15.0));
        assert_eq!(sample_step(&s[1..2]), None);
    }

    #[test]
    fn percents_sum_to_100() {
        // (weights, percents)
        let cases: [(&[f64], &[u32]); 6] = [
            (&[80.0, 20.0], &[80, 20]),
            // thirds: the remainder goes to the first
            (&[1.0, 1.0, 1.0], &[34, 33, 33]),
            // the largest remainder wins: 66.6 / 33.3 / 0.1
            (&[666.0, 333.0, 1.0], &[67, 33, 0]),
            // negative weights count as zero
            (&[-1.0, 3.0], &[0, 100]),
            (&[0.0, 0.0], &[0, 0]),
            (&[5.0], &[100]),
        ];
        for (w, want) in cases {
            let got = percents(w);
            assert_eq!(got, want, "{w:?}");
        }
    }

    #[test]
    fn the_split_changes_when_it_moves_enough() {
        // two revisions over six bins: 80/20, noise of 2 points, nothing, then 50/50, 20/80;
        // each block's split is that of its bins together (158/42, then 101/99)
        let rates = vec![
            vec![80.0, 78.0, 0.0, 50.0, 51.0, 20.0],
            vec![20.0, 22.0, 0.0, 50.0, 49.0, 80.0],
        ];
        let got = split_changes(&rates, 6, 5);
        assert_eq!(
            got,
            vec![(0, vec![79, 21]), (3, vec![51, 49]), (5, vec![20, 80])]
        );
        // moves of 4 points stay in one block, whose split is their mean
        let drift = vec![vec![50.0, 54.0, 46.0], vec![50.0, 46.0, 54.0]];
        assert_eq!(split_changes(&drift, 3, 5), vec![(0, vec![50, 50])]);
        // no traffic at all: no split
        assert_eq!(split_changes(&[vec![0.0; 3]], 3, 5), vec![]);
    }

    #[test]
    fn histograms_from_bucket_rates() {
        let bins = Bins::new(0.0, 30.0, 15.0);
        let b = |le: &str, v: f64| series(&[("le", le)], &[(0.0, v), (15.0, v)]);
        let s = [
            b("+Inf", 10.0),
            b("100", 6.0),
            b("5", 1.0),
            // lower than the bucket below it (rates of separately scraped series): raised
            b("10", 0.5),
            b("x", 1.0),
        ];
        let refs: Vec<&Series> = s.iter().collect();
        let (buckets, bad) = histogram(&refs, &bins, 1e-3);
        // rate × 15 s × 2 bins = requests
        assert_eq!(
            buckets,
            vec![
                (Some(0.005), 30.0),
                (Some(0.01), 30.0),
                (Some(0.1), 180.0),
                (None, 300.0)
            ]
        );
        assert_eq!(bad, vec!["x".to_string()]);
    }

    #[test]
    fn startup_lags_follow_requests() {
        // (requested, ready, lags in steps of 15 s)
        let cases: [(&[f64], &[f64], &[f64]); 4] = [
            // 3 -> 8 requested at bin 2, ready reaches 8 at bin 4: 30 s
            (
                &[3.0, 3.0, 8.0, 8.0, 8.0],
                &[3.0, 3.0, 3.0, 5.0, 8.0],
                &[30.0],
            ),
            // ready within the same bin: 0 s
            (&[1.0, 2.0], &[1.0, 2.0], &[0.0]),
            // never ready within the range: no lag
            (&[1.0, 4.0, 4.0], &[1.0, 1.0, 2.0], &[]),
            // scale-down: nothing to measure
            (&[5.0, 2.0], &[5.0, 2.0], &[]),
        ];
        for (req, ready, want) in cases {
            assert_eq!(startup_lags(req, ready, 15.0), want, "{req:?} {ready:?}");
        }
    }
}

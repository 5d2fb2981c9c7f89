//! HdrHistogram's exchange formats for a run's latency histograms: the percentile distribution
//! (`.hgrm`, what wrk2 prints and HdrHistogram's plotter reads) and the V2 compressed encoding
//! in base64 (what HdrHistogram's interval logs hold), so histograms from several machines
//! merge into exact percentiles.
//!
//! The `.hgrm` text follows HdrHistogram's Java `outputPercentileDistribution(out, 5, 1000.0)`:
//! values recorded in microseconds are printed in milliseconds, five ticks per half distance.
//!
//! Must not: write files (callers do, atomically).

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Percentile ticks per half distance to 100%, as wrk2 prints them.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Recorded microseconds per printed millisecond.
pub const SCALE: f64 = 1000.0;

/// The percentile distribution of `h` (microseconds) in milliseconds, HdrHistogram's format:
/// a header, `Value Percentile TotalCount 1/(1-Percentile)` rows, and the `#[Mean …]` footer.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / SCALE;
            if q < 1.0 {
                out.push_str(&format!(
                    "{value:12.3} {q:2.12} {total:10} {:14.2}\n",
                    1.0 / (1.0 - q)
                ));
            } else {
                out.push_str(&format!("{value:12.3} {q:2.12} {total:10}\n"));
            }
        }
    }
    let (mean, stdev) = if h.is_empty() {
        (0.0, 0.0)
    } else {
        (h.mean() / SCALE, h.stdev() / SCALE)
    };
    // HdrHistogram's sub-bucket count: the power of two that holds 2 × 10^sigfig.
    let sub_buckets = (2.0 * 10f64.powi(i32::from(h.sigfig())))
        .log2()
        .ceil()
        .exp2() as u64;
    out.push_str(&format!(
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]\n\
         #[Max     = {:12.3}, Total count    = {:12}]\n\
         #[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]\n",
        h.max() as f64 / SCALE,
        h.len(),
        h.buckets(),
    ));
    out
}

/// `h` in HdrHistogram's V2 compressed encoding, base64 (standard alphabet, padded).
pub fn to_base64(h: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| format!("{e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram `to_base64` encoded.
pub fn from_base64(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram V2 encoding: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).expect("valid");
        // 1 ms .. 100 ms, and a 2.5 s outlier
        for us in (1..=100).map(|i| i * 1000) {
            h.record(us).expect("in range");
        }
        h.record(2_500_000).expect("in range");
        h
    }

    /// `(value µs, quantile, total count)` rows and the footer's mean, max and count.
    fn parse_hgrm(text: &str) -> (Vec<(u64, f64, u64)>, f64, f64, u64) {
        let mut rows = Vec::new();
        let (mut mean, mut max, mut count) = (f64::NAN, f64::NAN, 0);
        for line in text.lines() {
            let field = |key: &str| -> Option<String> {
                let rest = line.split(key).nth(1)?;
                Some(
                    rest.trim_start_matches([' ', '='])
                        .split([',', ']'])
                        .next()?
                        .trim()
                        .to_string(),
                )
            };
            if line.starts_with("#[Mean") {
                mean = field("Mean").unwrap().parse().unwrap();
            } else if line.starts_with("#[Max") {
                max = field("Max").unwrap().parse().unwrap();
                count = field("Total count").unwrap().parse().unwrap();
            } else if let Some(first) = line.split_whitespace().next() {
                if let Ok(ms) = first.parse::<f64>() {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    rows.push((
                        (ms * SCALE).round() as u64,
                        cols[1].parse().unwrap(),
                        cols[2].parse().unwrap(),
                    ));
                }
            }
        }
        (rows, mean, max, count)
    }

    #[test]
    fn the_percentile_distribution_parses_back_to_the_histograms_counts() {
        let h = sample();
        let text = percentile_distribution(&h);
        assert!(
            text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
            "{text}"
        );
        let (rows, mean, max, count) = parse_hgrm(&text);
        assert!(rows.len() > 20, "{text}");
        for (value_us, q, total) in &rows {
            // Each row's count is the histogram's count up to its value, and its quantile is
            // at most the share of the count there.
            assert_eq!(h.count_between(0, *value_us), *total, "{text}");
            assert!(*q <= *total as f64 / h.len() as f64 + 1e-9, "{text}");
        }
        let last = rows.last().unwrap();
        assert_eq!((last.1, last.2), (1.0, 101), "{text}");
        assert_eq!(count, 101);
        assert!((max - h.max() as f64 / SCALE).abs() < 1e-9, "{max}");
        assert!((mean - h.mean() / SCALE).abs() < 5e-4, "{mean}");
        // The median row: 50 of 101 recorded at or below ~50 ms.
        let median = rows.iter().find(|r| r.1 >= 0.5).unwrap();
        assert_eq!(median.0, h.value_at_quantile(0.5), "{text}");
    }

    #[test]
    fn an_empty_histogram_has_a_header_and_a_footer_only() {
        let h = Histogram::<u64>::new(3).expect("valid");
        let (rows, mean, _, count) = parse_hgrm(&percentile_distribution(&h));
        assert!(rows.is_empty());
        assert_eq!((mean, count), (0.0, 0));
    }

    #[test]
    fn base64_round_trips_counts_and_percentiles() {
        let h = sample();
        let text = to_base64(&h).expect("serializes");
        // V2 compressed: the deflate cookie 0x1c849304, base64'd.
        assert!(text.starts_with("HISTFAA"), "{text}");
        let back = from_base64(&text).expect("deserializes");
        assert_eq!(back.len(), h.len());
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q), "{q}");
        }
        assert_eq!(back, h);
        assert!(from_base64("not base64!")
            .unwrap_err()
            .contains("not base64"));
        assert!(from_base64("AAAA")
            .unwrap_err()
            .contains("not an HdrHistogram"));
    }
}

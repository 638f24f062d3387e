//! Headline figures of a run: the [`Summary`] over all environments and the
//! [`Distribution`] of a set of durations.
//!
//! Invocations enter as the collector produced them; figures that were not
//! measured (`None`) or are not finite (NaN, infinities) are left out of every
//! statistic rather than counted as zero, so one partial record cannot drag a
//! percentile down. An empty set yields an all-zero distribution with
//! `count == 0`, which keeps the JSON free of NaN (JSON has no NaN).

use crate::model::Invocation;

use super::{Distribution, EnvironmentRun, Summary};

impl Distribution {
    /// The distribution of `values`, milliseconds; non-finite values are skipped.
    ///
    /// Percentiles use the nearest-rank method: the p-th percentile of `n`
    /// sorted values is the value at rank ⌈p·n/100⌉, so every percentile is a
    /// value that was actually observed.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return Self::default();
        }
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len();
        let mean = to_nanosecond(sorted.iter().sum::<f64>() / count as f64);
        Self {
            count,
            p50: nearest_rank(&sorted, 50),
            p95: nearest_rank(&sorted, 95),
            p99: nearest_rank(&sorted, 99),
            max: sorted[count - 1],
            mean,
        }
    }
}

/// Rounds computed milliseconds (a mean, a sum) to the nanosecond: finer than
/// anything measured, and short enough in JSON to read back as the same `f64`
/// (serde_json parses up to 15 significant digits exactly).
fn to_nanosecond(ms: f64) -> f64 {
    (ms * 1e6).round() / 1e6
}

/// The `percent`-th percentile of non-empty `sorted` by nearest rank.
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    // Integer arithmetic: ⌈percent·n/100⌉ without floating-point rounding surprises.
    let rank = (percent * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Computes the headline figures over every environment of a run.
///
/// Cold invocations are those flagged `cold_start` (the first of each
/// environment); the rest are warm. Errors are invocations whose status is not
/// `success`.
pub fn summarize(environments: &[EnvironmentRun]) -> Summary {
    let invocations = || environments.iter().flat_map(|env| env.invocations.iter());
    let max_rss_bytes = invocations().filter_map(rss_at_end_bytes).reduce(f64::max);
    Summary {
        invocations: invocations().count(),
        errors: invocations()
            .filter(|inv| inv.status != crate::model::Status::Success)
            .count(),
        init_ms: Distribution::of(
            environments
                .iter()
                .filter_map(|env| env.init.init_duration_ms),
        ),
        cold_invocation_ms: Distribution::of(
            invocations()
                .filter(|inv| inv.cold_start)
                .map(|inv| inv.duration_ms),
        ),
        warm_invocation_ms: Distribution::of(
            invocations()
                .filter(|inv| !inv.cold_start)
                .map(|inv| inv.duration_ms),
        ),
        max_rss_bytes,
        gc_collections: invocations().map(gc_collections).sum(),
        // A fold from +0.0: `sum` of no floats is -0.0, which would print as "-0".
        gc_pause_ms: to_nanosecond(
            invocations()
                .filter_map(gc_pause_ms)
                .fold(0.0, |a, b| a + b),
        ),
    }
}

/// RSS of the runtime process at the end of the invocation, bytes: procfs's
/// reading, else the probe's.
pub(crate) fn rss_at_end_bytes(inv: &Invocation) -> Option<f64> {
    inv.rss_bytes
        .or_else(|| {
            inv.python
                .as_ref()
                .and_then(|py| py.rss_bytes)
                .map(|b| b as f64)
        })
        .filter(|b| b.is_finite())
}

/// Garbage collections during the invocation: the record's count, else the
/// sum of the probe's per-generation counts.
pub(crate) fn gc_collections(inv: &Invocation) -> u64 {
    match &inv.python {
        Some(py) if inv.gc_collections == 0 => py.gc.iter().map(|g| g.collections).sum(),
        _ => u64::from(inv.gc_collections),
    }
}

/// GC pause during the invocation, milliseconds: the record's figure, else
/// the probe's per-generation pauses.
pub(crate) fn gc_pause_ms(inv: &Invocation) -> Option<f64> {
    inv.gc_pause_ms.filter(|ms| ms.is_finite()).or_else(|| {
        inv.python
            .as_ref()
            .map(|py| py.gc.iter().map(|g| g.pause_ns).sum::<u64>() as f64 / 1e6)
    })
}

/// How a series of memory readings moved over consecutive invocations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MemoryTrend {
    /// The first reading.
    pub(crate) first: f64,
    /// The last reading.
    pub(crate) last: f64,
    /// The largest reading.
    pub(crate) max: f64,
    /// Least-squares slope per invocation: a steady leak shows as a positive
    /// slope even when single invocations spike or the GC frees in bursts.
    pub(crate) growth_per_invocation: f64,
}

impl MemoryTrend {
    /// The trend of the finite values of `series`; `None` when there are none.
    pub(crate) fn of(series: &[Option<f64>]) -> Option<Self> {
        let points: Vec<(f64, f64)> = series
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i as f64, v)))
            .collect();
        let (&(_, first), &(_, last)) = (points.first()?, points.last()?);
        let max = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let growth_per_invocation = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        Some(Self {
            first,
            last,
            max,
            growth_per_invocation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GcGeneration, InitReport, PythonRuntime, Status};

    fn invocation(duration_ms: f64, cold: bool) -> Invocation {
        Invocation {
            duration_ms,
            cold_start: cold,
            ..Invocation::default()
        }
    }

    #[test]
    fn nearest_rank_percentiles_are_observed_values() {
        let d = Distribution::of((1..=100).map(f64::from));
        assert_eq!(d.count, 100);
        assert_eq!((d.p50, d.p95, d.p99, d.max), (50.0, 95.0, 99.0, 100.0));
        assert!((d.mean - 50.5).abs() < 1e-9);

        let d = Distribution::of([3.0, 1.0, 2.0]);
        // ⌈0.5·3⌉ = 2nd, ⌈0.95·3⌉ = 3rd.
        assert_eq!((d.p50, d.p95, d.p99, d.max), (2.0, 3.0, 3.0, 3.0));

        let d = Distribution::of([7.5]);
        assert_eq!(
            (d.p50, d.p95, d.p99, d.max, d.mean),
            (7.5, 7.5, 7.5, 7.5, 7.5)
        );
    }

    #[test]
    fn non_finite_values_are_skipped_and_empty_is_zero() {
        let d = Distribution::of([f64::NAN, 4.0, f64::INFINITY, 2.0]);
        assert_eq!(d.count, 2);
        assert_eq!((d.p50, d.max, d.mean), (2.0, 4.0, 3.0));

        let empty = Distribution::of([f64::NAN]);
        assert_eq!(empty, Distribution::default());
        assert_eq!(empty.count, 0);
    }

    #[test]
    fn summarize_splits_cold_and_warm_and_counts_errors() {
        let mut env1 = EnvironmentRun {
            init: InitReport {
                init_duration_ms: Some(300.0),
                ..InitReport::default()
            },
            invocations: vec![
                invocation(50.0, true),
                invocation(5.0, false),
                invocation(7.0, false),
            ],
        };
        env1.invocations[1].status = Status::Error;
        env1.invocations[1].rss_bytes = Some(1000.0);
        env1.invocations[2].rss_bytes = Some(f64::NAN);
        env1.invocations[2].gc_collections = 3;
        env1.invocations[2].gc_pause_ms = Some(1.5);
        let mut env2 = EnvironmentRun {
            init: InitReport::default(),
            invocations: vec![invocation(f64::NAN, true), invocation(6.0, false)],
        };
        env2.invocations[1].python = Some(PythonRuntime {
            gc: [
                GcGeneration {
                    collections: 2,
                    pause_ns: 500_000,
                    ..GcGeneration::default()
                },
                GcGeneration::default(),
                GcGeneration {
                    collections: 1,
                    pause_ns: 1_000_000,
                    ..GcGeneration::default()
                },
            ],
            rss_bytes: Some(4096),
            ..PythonRuntime::default()
        });

        let s = summarize(&[env1, env2]);
        assert_eq!(s.invocations, 5);
        assert_eq!(s.errors, 1);
        assert_eq!(s.init_ms.count, 1);
        assert_eq!(s.init_ms.p50, 300.0);
        assert_eq!(s.cold_invocation_ms.count, 1, "the NaN duration is skipped");
        assert_eq!(s.cold_invocation_ms.max, 50.0);
        assert_eq!(s.warm_invocation_ms.count, 3);
        assert_eq!(s.warm_invocation_ms.p50, 6.0);
        assert_eq!(s.max_rss_bytes, Some(4096.0), "the probe's RSS fills in");
        assert_eq!(s.gc_collections, 6);
        assert!((s.gc_pause_ms - 3.0).abs() < 1e-9);
    }

    #[test]
    fn summarize_of_nothing_is_empty() {
        let s = summarize(&[]);
        assert_eq!(s, Summary::default());
        assert_eq!(s.max_rss_bytes, None);
        assert!(s.gc_pause_ms.is_sign_positive(), "0, not -0");
    }

    #[test]
    fn memory_trend_is_the_least_squares_slope() {
        let series: Vec<Option<f64>> = (0..10).map(|i| Some(100.0 + 10.0 * f64::from(i))).collect();
        let trend = MemoryTrend::of(&series).expect("a trend");
        assert_eq!((trend.first, trend.last, trend.max), (100.0, 190.0, 190.0));
        assert!((trend.growth_per_invocation - 10.0).abs() < 1e-9);

        let gaps = [None, Some(5.0), Some(f64::NAN), None];
        let trend = MemoryTrend::of(&gaps).expect("one point");
        assert_eq!(trend.growth_per_invocation, 0.0);
        assert_eq!(MemoryTrend::of(&[None, None]), None);
    }
}

//! `memory-trend`: steady RSS growth across warm invocations, a memory leak.
//!
//! The plugin keeps, per function and across batches, a sliding window of
//! `(invocation index, RSS)` from warm invocations whose RSS was measured. A
//! cold start means a new process, so it empties the window. Once the window
//! holds `min_samples` points, [`assess`] fits a least-squares line and calls
//! the growth a leak only when it is both fast and *steady*:
//!
//! 1. the slope exceeds `min_slope_bytes` per invocation;
//! 2. the line explains the data: R² ≥ `min_r_squared` (a sawtooth, which
//!    climbs and drops back, scatters around any line);
//! 3. the growth is spread over the window: fitted separately, the first half
//!    and the second half each rise at least [`HALF_SLOPE_SHARE`] as fast as the
//!    whole window (a one-off step leaves one half flat, wherever it falls);
//! 4. no memory was given back: no drop between consecutive samples exceeds
//!    [`MAX_RELEASE_SHARE`] of the growth the line fits over the window (the
//!    first drop of a slow sawtooth).
//!
//! README.md has the knobs, the metrics and the reasoning behind each rule.

mod bindings {
    #![allow(missing_docs, unreachable_pub)]
    wit_bindgen::generate!({ path: "../../wit", world: "analyzer" });
}

use pyrometer_plugin_kit::stats::{LinearFit, least_squares};
use pyrometer_plugin_kit::window::{PerFunction, SlidingWindow};
use pyrometer_plugin_kit::{
    Analyzer, Batch, Bounds, Config, ConfigError, Finding, Log, Metric, Output, Severity, human,
    prom,
};

pyrometer_plugin_kit::export_analyzer!(MemoryTrend, bindings);

/// Rule 3: each half of the window must rise at least this share of the
/// whole window's slope.
pub(crate) const HALF_SLOPE_SHARE: f64 = 0.5;
/// Rule 4: a drop between consecutive samples larger than this share of the
/// window's fitted growth means memory is being released.
pub(crate) const MAX_RELEASE_SHARE: f64 = 0.5;
/// Lambda's memory sizes are in MiB.
const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

const GROWTH_BYTES: &str = "pyrometer_memory_trend_growth_per_invocation_bytes";
const R_SQUARED: &str = "pyrometer_memory_trend_r_squared_ratio";
const SAMPLES: &str = "pyrometer_memory_trend_window_samples";

/// The knobs of the steadiness test (README.md has the table).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Knobs {
    /// Warm samples kept per function.
    pub(crate) window: usize,
    /// Samples needed before the trend is assessed.
    pub(crate) min_samples: usize,
    /// Growth per invocation above which a steady trend is a leak, bytes.
    pub(crate) min_slope_bytes: f64,
    /// How well the line must fit.
    pub(crate) min_r_squared: f64,
}

/// What [`assess`] concluded about a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Fewer than `min_samples` points (or no spread in x).
    TooFewSamples,
    /// Growth at or below `min_slope_bytes` per invocation.
    Slow,
    /// R² below `min_r_squared`.
    Scattered,
    /// One half of the window rises much slower than the other.
    Uneven,
    /// A drop gave back a large share of the growth.
    Released,
    /// Steady growth above the threshold.
    Leak,
}

/// The fitted trend of a window and the verdict on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Assessment {
    pub(crate) fit: Option<LinearFit>,
    pub(crate) verdict: Verdict,
}

/// Applies the four rules of the module docs to points `(invocation index,
/// RSS bytes)` in increasing index order.
pub(crate) fn assess(points: &[(f64, f64)], knobs: &Knobs) -> Assessment {
    let fit = if points.len() >= knobs.min_samples {
        least_squares(points)
    } else {
        None
    };
    let verdict = match fit {
        None => Verdict::TooFewSamples,
        Some(fit) if fit.slope <= knobs.min_slope_bytes => Verdict::Slow,
        Some(fit) if fit.r_squared < knobs.min_r_squared => Verdict::Scattered,
        Some(fit) if !rises_in_both_halves(points, fit.slope) => Verdict::Uneven,
        Some(fit) if largest_drop(points) > MAX_RELEASE_SHARE * fitted_growth(points, &fit) => {
            Verdict::Released
        }
        Some(_) => Verdict::Leak,
    };
    Assessment { fit, verdict }
}

fn rises_in_both_halves(points: &[(f64, f64)], slope: f64) -> bool {
    let (first, second) = points.split_at(points.len() / 2);
    [first, second]
        .iter()
        .all(|half| least_squares(half).is_some_and(|fit| fit.slope >= HALF_SLOPE_SHARE * slope))
}

fn largest_drop(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|pair| pair[0].1 - pair[1].1)
        .fold(0.0, f64::max)
}

fn fitted_growth(points: &[(f64, f64)], fit: &LinearFit) -> f64 {
    match (points.first(), points.last()) {
        (Some(first), Some(last)) => fit.slope * (last.0 - first.0),
        _ => 0.0,
    }
}

/// One function's history.
#[derive(Debug, Clone)]
struct History {
    /// Invocations seen, warm or cold: the x of the next sample.
    next_index: u64,
    /// `(invocation index, RSS bytes)` of warm invocations.
    samples: SlidingWindow<(f64, f64)>,
}

/// The plugin: knobs plus per-function history.
#[derive(Debug, Clone)]
struct MemoryTrend {
    knobs: Knobs,
    histories: PerFunction<History>,
}

impl Analyzer for MemoryTrend {
    fn from_config(config: &mut Config) -> Result<Self, ConfigError> {
        let window = config.count("window", 30, Bounds::between(6.0, 10_000.0))?;
        let knobs = Knobs {
            window,
            // The default shrinks with a small window, so that setting `window` alone works.
            min_samples: config.count("min_samples", window.min(10), Bounds::at_least(6.0))?,
            min_slope_bytes: config.number("min_slope_bytes", 65_536.0, Bounds::non_negative())?,
            min_r_squared: config.number("min_r_squared", 0.8, Bounds::between(0.0, 1.0))?,
        };
        if knobs.min_samples > knobs.window {
            return Err(ConfigError::Conflict {
                message: format!(
                    "min_samples ({}) must not exceed window ({}): the window could never hold enough samples",
                    knobs.min_samples, knobs.window
                ),
            });
        }
        Ok(Self {
            knobs,
            histories: PerFunction::default(),
        })
    }

    fn analyze(&mut self, batch: &Batch, log: &mut dyn Log) -> Result<Output, String> {
        let window = self.knobs.window;
        let history = self.histories.entry(&batch.function.name, || History {
            next_index: 0,
            samples: SlidingWindow::new(window),
        });
        let invocations = &batch.invocations;
        for (cold, rss) in invocations.cold_start.iter().zip(&invocations.rss_bytes) {
            // A cold start is a new process: the old one's memory says nothing
            // about this one's.
            if *cold {
                history.samples.clear();
            } else if rss.is_finite() {
                #[allow(clippy::cast_precision_loss)]
                history.samples.push((history.next_index as f64, *rss));
            }
            history.next_index += 1;
        }

        let points: Vec<(f64, f64)> = history.samples.iter().copied().collect();
        let assessment = assess(&points, &self.knobs);
        let function = prom::label_value(&batch.function.name);
        let mut output = Output::default();
        #[allow(clippy::cast_precision_loss)]
        output.metrics.push(
            Metric::gauge(
                SAMPLES,
                "Warm invocations with a measured RSS in the memory-trend window.",
                points.len() as f64,
            )
            .label("function_name", function.clone()),
        );
        if let Some(fit) = assessment.fit {
            output.metrics.push(
                Metric::gauge(
                    GROWTH_BYTES,
                    "Least-squares RSS growth per warm invocation over the memory-trend window.",
                    fit.slope,
                )
                .label("function_name", function.clone()),
            );
            output.metrics.push(
                Metric::gauge(
                    R_SQUARED,
                    "How well a straight line fits RSS over the memory-trend window (R², 0 to 1).",
                    fit.r_squared,
                )
                .label("function_name", function.clone()),
            );
            if assessment.verdict == Verdict::Leak {
                output.findings.push(
                    Finding::new(
                        "memory-leak",
                        Severity::Warning,
                        leak_message(&points, &fit, batch.function.memory_size_mb),
                    )
                    .label("function_name", function),
                );
            }
        }
        log.debug(&format!(
            "{} warm samples in window, verdict {:?}, slope {}",
            points.len(),
            assessment.verdict,
            assessment
                .fit
                .map_or_else(|| "n/a".to_owned(), |f| human::bytes(f.slope)),
        ));
        Ok(output)
    }
}

fn leak_message(points: &[(f64, f64)], fit: &LinearFit, memory_size_mb: u32) -> String {
    let last_x = points.last().map_or(0.0, |p| p.0);
    let now = fit.at(last_x);
    let mut message = format!(
        "RSS grew steadily by about {} per invocation over the last {} warm invocations (R² {:.2}), to about {}",
        human::bytes(fit.slope),
        points.len(),
        fit.r_squared,
        human::bytes(now),
    );
    let limit = f64::from(memory_size_mb) * BYTES_PER_MB;
    if memory_size_mb > 0 && now < limit {
        let left = ((limit - now) / fit.slope).ceil();
        message.push_str(&format!(
            "; at this rate the {memory_size_mb} MB limit is reached in about {left:.0} invocations"
        ));
    }
    message.push('.');
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyrometer_plugin_kit::config::pairs;
    use pyrometer_plugin_kit::log::MemoryLog;
    use pyrometer_plugin_kit::{FunctionInfo, Invocations, analyze, configure, fixtures};

    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    const BASE: f64 = 100.0 * MIB;

    fn knobs() -> Knobs {
        Knobs {
            window: 30,
            min_samples: 10,
            min_slope_bytes: 64.0 * KIB,
            min_r_squared: 0.8,
        }
    }

    /// A small deterministic noise source (an LCG) in `[-amplitude, amplitude]`.
    fn noise(seed: &mut u64, amplitude: f64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let unit = (*seed >> 11) as f64 / (1u64 << 53) as f64;
        (unit * 2.0 - 1.0) * amplitude
    }

    fn series(n: u32, rss: impl Fn(u32) -> f64) -> Vec<(f64, f64)> {
        (0..n).map(|i| (f64::from(i), rss(i))).collect()
    }

    #[test]
    fn a_steady_leak_is_found_with_its_slope() {
        let mut seed = 7;
        let points = series(30, |i| BASE + 100.0 * KIB * f64::from(i));
        let points: Vec<_> = points
            .into_iter()
            .map(|(x, y)| (x, y + noise(&mut seed, 300.0 * KIB)))
            .collect();
        let a = assess(&points, &knobs());
        assert_eq!(a.verdict, Verdict::Leak);
        let slope = a.fit.map_or(0.0, |f| f.slope);
        assert!((90.0 * KIB..110.0 * KIB).contains(&slope), "{slope}");
    }

    #[test]
    fn a_staircase_leak_is_found_whatever_its_phase() {
        // 1 MiB every 10 invocations: how RSS grows when arenas are grabbed in chunks.
        for phase in 0..10 {
            let points = series(30, |i| BASE + MIB * f64::from((i + phase) / 10));
            assert_eq!(
                assess(&points, &knobs()).verdict,
                Verdict::Leak,
                "phase {phase}"
            );
        }
    }

    #[test]
    fn a_sawtooth_is_not_a_leak() {
        for period in 2..=29 {
            let points = series(30, |i| BASE + MIB * f64::from(i % period));
            let verdict = assess(&points, &knobs()).verdict;
            assert_ne!(verdict, Verdict::Leak, "period {period}");
        }
    }

    #[test]
    fn a_slow_sawtooth_is_not_a_leak_once_it_drops() {
        // Climbs for the whole window, then gives half of it back.
        let points = series(30, |i| {
            if i < 29 {
                BASE + MIB * f64::from(i)
            } else {
                BASE + 14.0 * MIB
            }
        });
        assert_eq!(assess(&points, &knobs()).verdict, Verdict::Released);
    }

    #[test]
    fn a_one_off_step_is_not_a_leak_wherever_it_falls() {
        let mut seed = 11;
        for step_at in 1..30 {
            for amplitude in [0.0, 100.0 * KIB, 500.0 * KIB] {
                let points = series(30, |i| {
                    let level = if i >= step_at { 20.0 * MIB } else { 0.0 };
                    BASE + level
                });
                let points: Vec<_> = points
                    .into_iter()
                    .map(|(x, y)| (x, y + noise(&mut seed, amplitude)))
                    .collect();
                let verdict = assess(&points, &knobs()).verdict;
                assert_ne!(
                    verdict,
                    Verdict::Leak,
                    "step at {step_at}, noise {amplitude}"
                );
            }
        }
    }

    #[test]
    fn the_halves_rule_catches_a_step_that_fits_well_enough() {
        // With a lenient fit threshold a step near the middle passes rule 2
        // (R² ≈ 0.75); rule 3 still rejects it, wherever it falls.
        let lenient = Knobs {
            min_r_squared: 0.5,
            ..knobs()
        };
        for step_at in 1..30 {
            let points = series(30, |i| {
                if i >= step_at {
                    BASE + 20.0 * MIB
                } else {
                    BASE
                }
            });
            let verdict = assess(&points, &lenient).verdict;
            assert_ne!(verdict, Verdict::Leak, "step at {step_at}");
            if (10..=20).contains(&step_at) {
                assert_eq!(verdict, Verdict::Uneven, "step at {step_at}");
            }
        }
    }

    #[test]
    fn flat_slow_and_short_series_are_not_leaks() {
        let flat = series(30, |_| BASE);
        assert_eq!(assess(&flat, &knobs()).verdict, Verdict::Slow);
        let slow = series(30, |i| BASE + 10.0 * KIB * f64::from(i));
        assert_eq!(assess(&slow, &knobs()).verdict, Verdict::Slow);
        let short = series(9, |i| BASE + MIB * f64::from(i));
        let a = assess(&short, &knobs());
        assert_eq!((a.verdict, a.fit), (Verdict::TooFewSamples, None));
    }

    #[test]
    fn noise_around_a_flat_line_is_scattered() {
        let mut seed = 3;
        // A small upward drift drowned in noise: slope over 64 KiB, R² low.
        let points: Vec<_> = series(30, |i| BASE + 80.0 * KIB * f64::from(i))
            .into_iter()
            .map(|(x, y)| (x, y + noise(&mut seed, 4.0 * MIB)))
            .collect();
        let a = assess(&points, &knobs());
        assert_ne!(a.verdict, Verdict::Leak, "{a:?}");
    }

    fn batch(cold: &[bool], rss: &[f64]) -> Batch {
        let n = rss.len();
        Batch {
            function: FunctionInfo {
                name: "orders".into(),
                memory_size_mb: 512,
                ..FunctionInfo::default()
            },
            invocations: Invocations {
                request_id: vec![String::new(); n],
                start_unix_ms: vec![0.0; n],
                cold_start: cold.to_vec(),
                status: vec![Default::default(); n],
                duration_ms: vec![1.0; n],
                billed_duration_ms: vec![f64::NAN; n],
                init_duration_ms: vec![f64::NAN; n],
                max_memory_used_mb: vec![f64::NAN; n],
                memory_size_mb: vec![512.0; n],
                rss_bytes: rss.to_vec(),
                cpu_user_ms: vec![f64::NAN; n],
                cpu_system_ms: vec![f64::NAN; n],
                gc_collections: vec![0; n],
                gc_pause_ms: vec![f64::NAN; n],
                allocated_blocks: vec![f64::NAN; n],
                post_runtime_ms: vec![f64::NAN; n],
            },
            imports: None,
        }
    }

    fn leak_batch(from: u32, n: u32) -> Batch {
        let rss: Vec<f64> = (from..from + n)
            .map(|i| BASE + 128.0 * KIB * f64::from(i))
            .collect();
        batch(&vec![false; rss.len()], &rss)
    }

    fn rules(output: &Output) -> Vec<&str> {
        output.findings.iter().map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn history_spans_batches_and_resets_on_cold_start() {
        let mut plugin: MemoryTrend = configure(&[]).expect("config");
        let mut log = MemoryLog::default();
        let first = analyze(&mut plugin, &leak_batch(0, 6), &mut log).expect("analyze");
        assert!(rules(&first).is_empty());
        let second = analyze(&mut plugin, &leak_batch(6, 6), &mut log).expect("analyze");
        assert_eq!(rules(&second), vec!["memory-leak"]);
        assert!(
            second.findings[0]
                .message
                .contains("128.0 KiB per invocation")
        );
        assert!(second.findings[0].message.contains("512 MB limit"));

        // A cold start empties the window: 5 new warm samples are too few.
        let mut rss = vec![BASE; 6];
        let mut cold = vec![false; 6];
        cold[0] = true;
        rss[0] = f64::NAN;
        let third = analyze(&mut plugin, &batch(&cold, &rss), &mut log).expect("analyze");
        assert!(rules(&third).is_empty());
        let samples = third.metrics.iter().find(|m| m.name == SAMPLES);
        assert!(samples.is_some_and(|m| m.value == 5.0));
    }

    #[test]
    fn unmeasured_rss_is_skipped_but_keeps_its_index() {
        let mut rss: Vec<f64> = (0..20).map(|i| BASE + 100.0 * KIB * f64::from(i)).collect();
        for i in (0..20).step_by(3) {
            rss[i] = f64::NAN;
        }
        let mut plugin: MemoryTrend = configure(&[]).expect("config");
        let output = analyze(
            &mut plugin,
            &batch(&[false; 20], &rss),
            &mut MemoryLog::default(),
        )
        .expect("analyze");
        let growth = output.metrics.iter().find(|m| m.name == GROWTH_BYTES);
        assert!(growth.is_some_and(|m| (m.value - 100.0 * KIB).abs() < 1.0));
        assert_eq!(rules(&output), vec!["memory-leak"]);
    }

    #[test]
    fn config_is_checked() {
        let err = configure::<MemoryTrend>(&pairs(&[("window", "8"), ("min_samples", "10")]))
            .expect_err("conflict");
        assert!(
            err.to_string()
                .contains("min_samples (10) must not exceed window (8)")
        );
        let err = configure::<MemoryTrend>(&pairs(&[("min_r_squared", "2")])).expect_err("bound");
        assert!(err.to_string().contains("min_r_squared"));
        assert!(configure::<MemoryTrend>(&pairs(&[("window", "6")])).is_ok());
    }

    #[test]
    fn fixtures() {
        fixtures::run_all::<MemoryTrend>(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/memory-trend"),
        );
    }
}

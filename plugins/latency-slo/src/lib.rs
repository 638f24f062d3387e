//! `latency-slo`: latency quantiles, error ratio and SLO burn rates.
//!
//! The plugin keeps, per function and across batches, the last `window`
//! invocations (duration and whether it failed). From them it exports p50, p95
//! and p99 duration and the error ratio, and tracks two objectives:
//!
//! - *latency*: at least `latency_target` of invocations finish within
//!   `latency_objective_ms`, so `1 − latency_target` of them may be slow;
//! - *errors*: at most `error_budget` of invocations end in any status other
//!   than success.
//!
//! A burn rate is the observed bad fraction over the allowed one: 1 spends the
//! error budget exactly as fast as the objective allows, 10 ten times as fast.
//! Following the multiwindow burn-rate alerts of the Google SRE workbook, a
//! `slo-burn` finding needs the rate over the whole window (*long*: enough
//! evidence) **and** over its newest `short_window` invocations (*short*: still
//! happening, so the alert clears soon after a fix) to exceed the threshold:
//! warning above `warn_burn_rate`, critical above `critical_burn_rate`. No
//! finding is drawn before the window holds `min_samples` invocations.

mod bindings {
    #![allow(missing_docs, unreachable_pub)]
    wit_bindgen::generate!({ path: "../../wit", world: "analyzer" });
}

use pyrometer_plugin_kit::stats::quantiles;
use pyrometer_plugin_kit::window::{PerFunction, SlidingWindow};
use pyrometer_plugin_kit::{
    Analyzer, Batch, Bounds, Config, ConfigError, Finding, Log, Metric, Output, Severity, Status,
    human, prom,
};

pyrometer_plugin_kit::export_analyzer!(LatencySlo, bindings);

const DURATION_SECONDS: &str = "pyrometer_latency_slo_duration_seconds";
const ERROR_RATIO: &str = "pyrometer_latency_slo_error_ratio";
const BURN_RATE: &str = "pyrometer_latency_slo_burn_rate";
const SAMPLES: &str = "pyrometer_latency_slo_window_samples";
const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];
const MS_PER_SECOND: f64 = 1_000.0;

/// One invocation as the window remembers it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// Handler duration, NaN when not measured.
    duration_ms: f64,
    /// Ended in any status but success.
    failed: bool,
}

/// The plugin's knobs (README.md has the table).
#[derive(Debug, Clone, PartialEq)]
struct Knobs {
    window: usize,
    short_window: usize,
    min_samples: usize,
    latency_objective_ms: f64,
    latency_target: f64,
    error_budget: f64,
    warn_burn_rate: f64,
    critical_burn_rate: f64,
}

/// One objective's burn rates over the long and the short window.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Burn {
    /// Over the whole window; `None` when nothing in it was measured.
    long: Option<f64>,
    /// Over the newest `short_window` invocations.
    short: Option<f64>,
    /// The long window's bad fraction.
    bad_fraction: Option<f64>,
}

impl Burn {
    /// Bad fraction of `samples` by `is_bad` (which returns `None` for a
    /// sample that says nothing about the objective), as a burn rate against
    /// `allowed`.
    fn rate<'a>(
        samples: impl Iterator<Item = &'a Sample>,
        is_bad: impl Fn(&Sample) -> Option<bool>,
        allowed: f64,
    ) -> (Option<f64>, Option<f64>) {
        let (mut bad, mut total) = (0u32, 0u32);
        for sample in samples {
            if let Some(b) = is_bad(sample) {
                total += 1;
                bad += u32::from(b);
            }
        }
        if total == 0 {
            return (None, None);
        }
        let fraction = f64::from(bad) / f64::from(total);
        (Some(fraction / allowed), Some(fraction))
    }

    fn over(
        window: &SlidingWindow<Sample>,
        short: usize,
        is_bad: impl Fn(&Sample) -> Option<bool> + Copy,
        allowed: f64,
    ) -> Self {
        let (long, bad_fraction) = Self::rate(window.iter(), is_bad, allowed);
        let (short, _) = Self::rate(window.newest(short), is_bad, allowed);
        Self {
            long,
            short,
            bad_fraction,
        }
    }

    /// The rate both windows exceed: the smaller of the two.
    fn sustained(&self) -> Option<f64> {
        Some(self.long?.min(self.short?))
    }
}

/// The plugin: knobs plus a window per function.
#[derive(Debug, Clone)]
struct LatencySlo {
    knobs: Knobs,
    windows: PerFunction<SlidingWindow<Sample>>,
}

impl Analyzer for LatencySlo {
    fn from_config(config: &mut Config) -> Result<Self, ConfigError> {
        let window = config.count("window", 100, Bounds::between(1.0, 100_000.0))?;
        // Defaults shrink with a small window, so that setting `window` alone works.
        let knobs = Knobs {
            window,
            short_window: config.count("short_window", window.min(10), Bounds::at_least(1.0))?,
            min_samples: config.count("min_samples", window.min(20), Bounds::at_least(1.0))?,
            latency_objective_ms: config.number(
                "latency_objective_ms",
                1_000.0,
                Bounds::positive(),
            )?,
            latency_target: config.number("latency_target", 0.99, Bounds::open_unit())?,
            error_budget: config.number("error_budget", 0.01, Bounds::open_unit())?,
            warn_burn_rate: config.number("warn_burn_rate", 2.0, Bounds::positive())?,
            critical_burn_rate: config.number("critical_burn_rate", 10.0, Bounds::positive())?,
        };
        let conflict = |message: String| Err(ConfigError::Conflict { message });
        if knobs.short_window > knobs.window {
            return conflict(format!(
                "short_window ({}) must not exceed window ({})",
                knobs.short_window, knobs.window
            ));
        }
        if knobs.min_samples > knobs.window {
            return conflict(format!(
                "min_samples ({}) must not exceed window ({}): the window could never hold enough samples",
                knobs.min_samples, knobs.window
            ));
        }
        if knobs.critical_burn_rate < knobs.warn_burn_rate {
            return conflict(format!(
                "critical_burn_rate ({}) must be at least warn_burn_rate ({})",
                knobs.critical_burn_rate, knobs.warn_burn_rate
            ));
        }
        Ok(Self {
            knobs,
            windows: PerFunction::default(),
        })
    }

    fn analyze(&mut self, batch: &Batch, log: &mut dyn Log) -> Result<Output, String> {
        let knobs = &self.knobs;
        let window = self
            .windows
            .entry(&batch.function.name, || SlidingWindow::new(knobs.window));
        let invocations = &batch.invocations;
        for (duration_ms, status) in invocations.duration_ms.iter().zip(&invocations.status) {
            window.push(Sample {
                duration_ms: *duration_ms,
                failed: *status != Status::Success,
            });
        }
        if window.is_empty() {
            return Ok(Output::default());
        }

        let function = prom::label_value(&batch.function.name);
        let mut output = Output::default();
        #[allow(clippy::cast_precision_loss)]
        output.metrics.push(
            Metric::gauge(
                SAMPLES,
                "Invocations in the latency-SLO window.",
                window.len() as f64,
            )
            .label("function_name", function.clone()),
        );
        let durations = window.iter().map(|s| s.duration_ms);
        for (q, value) in QUANTILES.iter().zip(quantiles(durations, &QUANTILES)) {
            if let Some(ms) = value {
                output.metrics.push(
                    Metric::gauge(
                        DURATION_SECONDS,
                        "Handler duration quantile over the latency-SLO window.",
                        ms / MS_PER_SECOND,
                    )
                    .label("function_name", function.clone())
                    .label("quantile", prom::quantile_label(*q)),
                );
            }
        }

        let objective_ms = knobs.latency_objective_ms;
        let latency = Burn::over(
            window,
            knobs.short_window,
            |s| (!s.duration_ms.is_nan()).then_some(s.duration_ms > objective_ms),
            1.0 - knobs.latency_target,
        );
        let errors = Burn::over(
            window,
            knobs.short_window,
            |s| Some(s.failed),
            knobs.error_budget,
        );
        if let Some(ratio) = errors.bad_fraction {
            output.metrics.push(
                Metric::gauge(
                    ERROR_RATIO,
                    "Share of invocations in the latency-SLO window that did not succeed.",
                    ratio,
                )
                .label("function_name", function.clone()),
            );
        }
        for (objective, burn) in [("latency", &latency), ("errors", &errors)] {
            for (span, rate) in [("long", burn.long), ("short", burn.short)] {
                if let Some(rate) = rate {
                    output.metrics.push(
                        Metric::gauge(
                            BURN_RATE,
                            "How fast the SLO's error budget is spent (1 = exactly as allowed) over the whole window (long) or its newest invocations (short).",
                            rate,
                        )
                        .label("function_name", function.clone())
                        .label("objective", objective)
                        .label("window", span),
                    );
                }
            }
        }

        if window.len() >= knobs.min_samples {
            let latency_goal = format!(
                "{} within {}",
                human::percent(knobs.latency_target),
                human::ms(objective_ms)
            );
            let error_goal = format!("at most {} errors", human::percent(knobs.error_budget));
            for (objective, burn, goal, bad) in [
                ("latency", latency, latency_goal, "were slower"),
                ("errors", errors, error_goal, "failed"),
            ] {
                let Some(severity) = burn.sustained().and_then(|rate| knobs.severity(rate)) else {
                    continue;
                };
                output.findings.push(
                    Finding::new(
                        "slo-burn",
                        severity,
                        format!(
                            "The {objective} SLO ({goal}) is burning {:.1}× its budget: {} of the last {} invocations {bad}, and the newest {} confirm it ({:.1}×).",
                            burn.long.unwrap_or(0.0),
                            human::percent(burn.bad_fraction.unwrap_or(0.0)),
                            window.len(),
                            knobs.short_window.min(window.len()),
                            burn.short.unwrap_or(0.0),
                        ),
                    )
                    .label("function_name", function.clone())
                    .label("objective", objective),
                );
            }
        }
        let rate = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}"));
        log.debug(&format!(
            "{} invocations in window, burn rates long/short: latency {}/{}, errors {}/{}",
            window.len(),
            rate(latency.long),
            rate(latency.short),
            rate(errors.long),
            rate(errors.short),
        ));
        Ok(output)
    }
}

impl Knobs {
    /// The severity of a sustained burn rate, `None` below the warning rate.
    fn severity(&self, rate: f64) -> Option<Severity> {
        if rate > self.critical_burn_rate {
            Some(Severity::Critical)
        } else if rate > self.warn_burn_rate {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyrometer_plugin_kit::config::pairs;
    use pyrometer_plugin_kit::log::MemoryLog;
    use pyrometer_plugin_kit::{FunctionInfo, Invocations, analyze, configure, fixtures};

    fn batch(samples: &[(f64, Status)]) -> Batch {
        let n = samples.len();
        Batch {
            function: FunctionInfo {
                name: "api".into(),
                ..FunctionInfo::default()
            },
            invocations: Invocations {
                request_id: vec![String::new(); n],
                start_unix_ms: vec![0.0; n],
                cold_start: vec![false; n],
                status: samples.iter().map(|s| s.1).collect(),
                duration_ms: samples.iter().map(|s| s.0).collect(),
                billed_duration_ms: vec![f64::NAN; n],
                init_duration_ms: vec![f64::NAN; n],
                max_memory_used_mb: vec![f64::NAN; n],
                memory_size_mb: vec![f64::NAN; n],
                rss_bytes: vec![f64::NAN; n],
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

    /// `n` invocations; every `every`-th (1-based) is `bad`.
    fn pattern(n: usize, every: usize, bad: (f64, Status)) -> Vec<(f64, Status)> {
        (1..=n)
            .map(|i| {
                if every > 0 && i % every == 0 {
                    bad
                } else {
                    (100.0 + (i % 7) as f64 * 10.0, Status::Success)
                }
            })
            .collect()
    }

    fn run(config: &[(&str, &str)], batches: &[Vec<(f64, Status)>]) -> Output {
        let mut plugin: LatencySlo = configure(&pairs(config)).expect("config");
        let mut output = Output::default();
        for b in batches {
            output = analyze(&mut plugin, &batch(b), &mut MemoryLog::default()).expect("analyze");
        }
        output
    }

    fn findings(output: &Output) -> Vec<(String, Severity)> {
        output
            .findings
            .iter()
            .map(|f| {
                (
                    f.label_value("objective").unwrap_or("").to_owned(),
                    f.severity,
                )
            })
            .collect()
    }

    fn metric(output: &Output, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        output
            .metrics
            .iter()
            .find(|m| m.name == name && labels.iter().all(|(k, v)| m.label_value(k) == Some(v)))
            .map(|m| m.value)
    }

    #[test]
    fn a_healthy_window_is_quiet_and_measured() {
        let output = run(&[], &[pattern(100, 0, (0.0, Status::Success))]);
        assert!(output.findings.is_empty());
        assert_eq!(metric(&output, ERROR_RATIO, &[]), Some(0.0));
        let p50 = metric(&output, DURATION_SECONDS, &[("quantile", "0.5")]).unwrap_or(0.0);
        assert!((0.1..=0.16).contains(&p50), "{p50}");
        assert_eq!(
            metric(
                &output,
                BURN_RATE,
                &[("objective", "latency"), ("window", "long")]
            ),
            Some(0.0)
        );
    }

    #[test]
    fn errors_burn_at_the_rate_of_their_share() {
        // 5 % errors = 5× the 1 % budget, in both windows: a warning.
        let output = run(&[], &[pattern(100, 20, (100.0, Status::Error))]);
        assert_eq!(
            findings(&output),
            vec![("errors".to_owned(), Severity::Warning)]
        );
        let long = metric(
            &output,
            BURN_RATE,
            &[("objective", "errors"), ("window", "long")],
        );
        assert!(long.is_some_and(|r| (r - 5.0).abs() < 1e-9));
        // 20 % errors: critical.
        let output = run(&[], &[pattern(100, 5, (100.0, Status::Timeout))]);
        assert_eq!(
            findings(&output),
            vec![("errors".to_owned(), Severity::Critical)]
        );
    }

    #[test]
    fn slow_invocations_burn_the_latency_budget() {
        let output = run(&[], &[pattern(100, 4, (1_500.0, Status::Success))]);
        assert_eq!(
            findings(&output),
            vec![("latency".to_owned(), Severity::Critical)]
        );
        let p99 = metric(&output, DURATION_SECONDS, &[("quantile", "0.99")]);
        assert_eq!(p99, Some(1.5));
    }

    #[test]
    fn a_burn_that_stopped_is_not_reported() {
        // Many errors early in the window, none in the newest 10: the long
        // window still burns, the short one does not.
        let mut samples = pattern(80, 4, (100.0, Status::Error));
        samples.extend(pattern(20, 0, (0.0, Status::Success)));
        let output = run(&[], &[samples]);
        assert!(output.findings.is_empty(), "{:?}", output.findings);
        let long = metric(
            &output,
            BURN_RATE,
            &[("objective", "errors"), ("window", "long")],
        );
        assert!(long.is_some_and(|r| r > 10.0));
    }

    #[test]
    fn the_window_spans_batches_and_keeps_the_newest() {
        // 100 errors, then 100 successes: the errors have left the window.
        let output = run(
            &[],
            &[
                pattern(100, 1, (100.0, Status::Error)),
                pattern(60, 0, (0.0, Status::Success)),
                pattern(40, 0, (0.0, Status::Success)),
            ],
        );
        assert!(output.findings.is_empty());
        assert_eq!(metric(&output, ERROR_RATIO, &[]), Some(0.0));
        assert_eq!(metric(&output, SAMPLES, &[]), Some(100.0));
    }

    #[test]
    fn no_finding_before_min_samples() {
        let output = run(&[], &[pattern(19, 1, (5_000.0, Status::Error))]);
        assert!(output.findings.is_empty());
        assert_eq!(metric(&output, ERROR_RATIO, &[]), Some(1.0));
        let output = run(&[], &[pattern(20, 1, (5_000.0, Status::Error))]);
        assert_eq!(output.findings.len(), 2);
    }

    #[test]
    fn unmeasured_durations_count_for_errors_only() {
        let output = run(&[], &[pattern(30, 1, (f64::NAN, Status::Error))]);
        assert_eq!(
            findings(&output),
            vec![("errors".to_owned(), Severity::Critical)]
        );
        assert_eq!(metric(&output, DURATION_SECONDS, &[]), None);
    }

    #[test]
    fn config_conflicts_are_named() {
        for (config, needle) in [
            (
                vec![("short_window", "200")],
                "short_window (200) must not exceed window (100)",
            ),
            (
                vec![("window", "10"), ("min_samples", "20")],
                "min_samples (20) must not exceed window (10)",
            ),
            (
                vec![("warn_burn_rate", "20")],
                "critical_burn_rate (10) must be at least warn_burn_rate (20)",
            ),
            (vec![("latency_target", "1")], "latency_target"),
            (vec![("error_budget", "0")], "error_budget"),
        ] {
            let err = configure::<LatencySlo>(&pairs(&config)).expect_err("bad config");
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert!(configure::<LatencySlo>(&pairs(&[("window", "5")])).is_ok());
    }

    #[test]
    fn fixtures() {
        fixtures::run_all::<LatencySlo>(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/latency-slo"),
        );
    }
}

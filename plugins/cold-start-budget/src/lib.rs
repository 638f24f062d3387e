//! `cold-start-budget`: is each cold start within its init-time budget?
//!
//! For every cold-start invocation whose init duration is known, the plugin
//! divides the init duration by the function's budget (`budget_ms`, or the
//! per-function override `budget_ms.<function-name>`). It exports the latest
//! ratio and the budget as gauges and reports one `cold-start-budget` finding
//! per batch for the worst cold start over budget: a warning above the budget,
//! critical above `critical_factor` times the budget. See README.md.

mod bindings {
    #![allow(missing_docs, unreachable_pub)]
    wit_bindgen::generate!({ path: "../../wit", world: "analyzer" });
}

use pyrometer_plugin_kit::{
    Analyzer, Batch, Bounds, Config, ConfigError, Finding, Log, Metric, Output, Severity, human,
    prom,
};

pyrometer_plugin_kit::export_analyzer!(ColdStartBudget, bindings);

const USED_RATIO: &str = "pyrometer_cold_start_budget_used_ratio";
const BUDGET_SECONDS: &str = "pyrometer_cold_start_budget_seconds";
const MS_PER_SECOND: f64 = 1_000.0;

/// The plugin's knobs (README.md has the table).
#[derive(Debug, Clone, PartialEq)]
struct ColdStartBudget {
    /// The init budget of functions without an override, in milliseconds.
    budget_ms: f64,
    /// `(function name, budget in ms)` overrides.
    overrides: Vec<(String, f64)>,
    /// Above this many budgets, a cold start is critical.
    critical_factor: f64,
}

impl Analyzer for ColdStartBudget {
    fn from_config(config: &mut Config) -> Result<Self, ConfigError> {
        Ok(Self {
            budget_ms: config.number("budget_ms", 1_000.0, Bounds::positive())?,
            overrides: config.numbers_with_prefix(
                "budget_ms.",
                "budget_ms.<function-name>",
                Bounds::positive(),
            )?,
            critical_factor: config.number("critical_factor", 2.0, Bounds::at_least(1.0))?,
        })
    }

    fn analyze(&mut self, batch: &Batch, log: &mut dyn Log) -> Result<Output, String> {
        let budget_ms = self.budget_for(&batch.function.name);
        let invocations = &batch.invocations;
        let cold_inits: Vec<f64> = invocations
            .cold_start
            .iter()
            .zip(&invocations.init_duration_ms)
            .filter(|(cold, _)| **cold)
            .map(|(_, init)| *init)
            .collect();
        let known: Vec<f64> = cold_inits
            .iter()
            .copied()
            .filter(|i| i.is_finite())
            .collect();
        if cold_inits.len() > known.len() {
            log.debug(&format!(
                "{} cold start(s) without an init duration skipped",
                cold_inits.len() - known.len()
            ));
        }
        let (Some(&latest), Some(worst)) = (known.last(), known.iter().copied().reduce(f64::max))
        else {
            return Ok(Output::default());
        };

        let function = prom::label_value(&batch.function.name);
        let mut output = Output::default();
        output.metrics.push(
            Metric::gauge(
                USED_RATIO,
                "Init duration of the latest cold start divided by the function's cold-start budget.",
                latest / budget_ms,
            )
            .label("function_name", function.clone()),
        );
        output.metrics.push(
            Metric::gauge(
                BUDGET_SECONDS,
                "The cold-start (init duration) budget configured for the function.",
                budget_ms / MS_PER_SECOND,
            )
            .label("function_name", function.clone()),
        );

        let over = known.iter().filter(|&&init| init > budget_ms).count();
        if let Some(severity) = self.severity(worst / budget_ms) {
            let of = if known.len() > 1 {
                format!(
                    " ({over} of {} cold starts in this batch were over)",
                    known.len()
                )
            } else {
                String::new()
            };
            output.findings.push(
                Finding::new(
                    "cold-start-budget",
                    severity,
                    format!(
                        "Cold start took {} of init, {} of its {} budget{of}.",
                        human::ms(worst),
                        human::percent(worst / budget_ms),
                        human::ms(budget_ms),
                    ),
                )
                .label("function_name", function),
            );
        }
        log.debug(&format!(
            "{} cold start(s), latest init {}, budget {}",
            known.len(),
            human::ms(latest),
            human::ms(budget_ms)
        ));
        Ok(output)
    }
}

impl ColdStartBudget {
    /// The budget of `function`: its override if any, else `budget_ms`.
    fn budget_for(&self, function: &str) -> f64 {
        self.overrides
            .iter()
            .find(|(name, _)| name == function)
            .map_or(self.budget_ms, |(_, budget)| *budget)
    }

    /// The finding's severity for a used ratio, `None` within budget.
    fn severity(&self, used: f64) -> Option<Severity> {
        if used > self.critical_factor {
            Some(Severity::Critical)
        } else if used > 1.0 {
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

    /// One invocation per `(cold_start, init_ms)`.
    fn batch(function: &str, invocations: &[(bool, f64)]) -> Batch {
        let n = invocations.len();
        Batch {
            function: FunctionInfo {
                name: function.into(),
                ..FunctionInfo::default()
            },
            invocations: Invocations {
                request_id: vec![String::new(); n],
                start_unix_ms: vec![0.0; n],
                cold_start: invocations.iter().map(|i| i.0).collect(),
                status: vec![Default::default(); n],
                duration_ms: vec![1.0; n],
                billed_duration_ms: vec![f64::NAN; n],
                init_duration_ms: invocations.iter().map(|i| i.1).collect(),
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

    fn run(config: &[(&str, &str)], batch: &Batch) -> Output {
        let mut plugin: ColdStartBudget = configure(&pairs(config)).expect("config");
        analyze(&mut plugin, batch, &mut MemoryLog::default()).expect("analyze")
    }

    fn severities(output: &Output) -> Vec<Severity> {
        output.findings.iter().map(|f| f.severity).collect()
    }

    #[test]
    fn severity_follows_the_budget() {
        let cases = [
            (400.0, vec![]),
            (1_000.0, vec![]),
            (1_500.0, vec![Severity::Warning]),
            (2_000.0, vec![Severity::Warning]),
            (2_500.0, vec![Severity::Critical]),
        ];
        for (init, want) in cases {
            let output = run(&[], &batch("f", &[(true, init), (false, f64::NAN)]));
            assert_eq!(severities(&output), want, "init {init}");
            let ratio = output.metrics.iter().find(|m| m.name == USED_RATIO);
            assert!(ratio.is_some_and(|m| (m.value - init / 1_000.0).abs() < 1e-12));
        }
    }

    #[test]
    fn overrides_apply_to_their_function_only() {
        let config = [("budget_ms", "500"), ("budget_ms.orders", "3000")];
        let orders = run(&config, &batch("orders", &[(true, 2_500.0)]));
        assert!(orders.findings.is_empty());
        let budget = orders.metrics.iter().find(|m| m.name == BUDGET_SECONDS);
        assert!(budget.is_some_and(|m| m.value == 3.0));
        let users = run(&config, &batch("users", &[(true, 2_500.0)]));
        assert_eq!(severities(&users), vec![Severity::Critical]);
    }

    #[test]
    fn warm_or_unknown_inits_produce_nothing() {
        assert_eq!(
            run(&[], &batch("f", &[(false, 5_000.0)])),
            Output::default()
        );
        assert_eq!(
            run(&[], &batch("f", &[(true, f64::NAN)])),
            Output::default()
        );
        assert_eq!(run(&[], &batch("f", &[])), Output::default());
    }

    #[test]
    fn several_cold_starts_report_the_worst_once() {
        let output = run(&[], &batch("f", &[(true, 2_500.0), (true, 800.0)]));
        assert_eq!(severities(&output), vec![Severity::Critical]);
        assert!(output.findings[0].message.contains("1 of 2"));
        // The gauge shows the latest level, not the worst.
        let ratio = output.metrics.iter().find(|m| m.name == USED_RATIO);
        assert!(ratio.is_some_and(|m| (m.value - 0.8).abs() < 1e-12));
    }

    #[test]
    fn config_errors_name_the_knob() {
        for (config, needle) in [
            (
                vec![("budget_ms", "fast")],
                "budget_ms must be a number greater than 0, got 'fast'",
            ),
            (vec![("budget_ms.orders", "0")], "budget_ms.orders"),
            (vec![("critical_factor", "0.5")], "critical_factor"),
            (vec![("budget", "1")], "budget_ms.<function-name>"),
        ] {
            let err = configure::<ColdStartBudget>(&pairs(&config)).expect_err("bad config");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn fixtures() {
        fixtures::run_all::<ColdStartBudget>(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/cold-start-budget"),
        );
    }
}

//! `slow-imports`: which imports make a cold start slow.
//!
//! On every batch that carries an import profile (a cold start happened), the
//! plugin ranks modules by self time and by cumulative time and exports the
//! top `top_n` of each as gauges, so the number of series stays bounded however
//! many modules the function imports. It reports a `slow-import` finding for
//! each module whose *cumulative* time (the module and everything it imported)
//! exceeds `module_threshold_ms`, slowest first and at most `top_n` of them,
//! and an `import-share` finding when the whole import phase takes more than
//! `max_import_share` of the cold start's init duration. Batches without an
//! import profile produce nothing. See README.md for the knobs and metrics.

mod bindings {
    #![allow(missing_docs, unreachable_pub)]
    wit_bindgen::generate!({ path: "../../wit", world: "analyzer" });
}

use pyrometer_plugin_kit::{
    Analyzer, Batch, Bounds, Config, ConfigError, Finding, ImportProfile, Log, Metric, Output,
    Severity, human, prom,
};

pyrometer_plugin_kit::export_analyzer!(SlowImports, bindings);

/// The most modules ranked per list, so that a misconfiguration cannot create
/// thousands of series.
const MAX_TOP_N: usize = 100;
const US_PER_MS: f64 = 1_000.0;
const US_PER_SECOND: f64 = 1_000_000.0;

const SELF_SECONDS: &str = "pyrometer_slow_imports_self_seconds";
const CUMULATIVE_SECONDS: &str = "pyrometer_slow_imports_cumulative_seconds";
const PHASE_SECONDS: &str = "pyrometer_slow_imports_phase_seconds";
const INIT_SHARE_RATIO: &str = "pyrometer_slow_imports_init_share_ratio";
const MODULES: &str = "pyrometer_slow_imports_modules";

/// The plugin's knobs (README.md has the table).
#[derive(Debug, Clone, PartialEq)]
struct SlowImports {
    /// How many modules to export per ranking, and the most `slow-import` findings.
    top_n: usize,
    /// A module whose cumulative import time exceeds this is slow.
    module_threshold_ms: f64,
    /// The import phase may take at most this share of the init duration.
    max_import_share: f64,
}

impl Analyzer for SlowImports {
    fn from_config(config: &mut Config) -> Result<Self, ConfigError> {
        #[allow(clippy::cast_precision_loss)]
        let top_n_bounds = Bounds::between(1.0, MAX_TOP_N as f64);
        Ok(Self {
            top_n: config.count("top_n", 10, top_n_bounds)?,
            module_threshold_ms: config.number("module_threshold_ms", 100.0, Bounds::positive())?,
            max_import_share: config.number("max_import_share", 0.5, Bounds::fraction())?,
        })
    }

    fn analyze(&mut self, batch: &Batch, log: &mut dyn Log) -> Result<Output, String> {
        let Some(imports) = &batch.imports else {
            return Ok(Output::default());
        };
        let function = prom::label_value(&batch.function.name);
        let mut output = Output::default();
        self.rank(imports, &function, &mut output);
        let slow = self.slow_modules(imports, &function, &mut output);

        let phase_us = import_phase_us(imports);
        output.metrics.push(
            Metric::gauge(
                PHASE_SECONDS,
                "Time spent importing top-level modules (and everything they imported) during the last profiled cold start.",
                us_to_seconds(phase_us),
            )
            .label("function_name", function.clone()),
        );
        #[allow(clippy::cast_precision_loss)]
        output.metrics.push(
            Metric::gauge(
                MODULES,
                "Modules imported during the last profiled cold start.",
                imports.len() as f64,
            )
            .label("function_name", function.clone()),
        );

        let init_ms = cold_start_init_ms(batch);
        match init_ms {
            Some(init_ms) => self.import_share(phase_us, init_ms, &function, &mut output),
            None => log.debug("no cold start with a known init duration; import share skipped"),
        }
        log.debug(&format!(
            "{} modules, import phase {}, {slow} over {}",
            imports.len(),
            human::ms(us_to_ms(phase_us)),
            human::ms(self.module_threshold_ms),
        ));
        Ok(output)
    }
}

impl SlowImports {
    /// Gauges for the `top_n` modules by self time and by cumulative time.
    fn rank(&self, imports: &ImportProfile, function: &str, output: &mut Output) {
        let rankings = [
            (
                SELF_SECONDS,
                "Import time of one of the slowest modules, excluding the modules it imported, at the last profiled cold start (top N only).",
                &imports.self_us,
            ),
            (
                CUMULATIVE_SECONDS,
                "Import time of one of the slowest modules, including the modules it imported, at the last profiled cold start (top N only).",
                &imports.cumulative_us,
            ),
        ];
        for (name, help, times) in rankings {
            for i in top_modules(imports, times, self.top_n, |_| true) {
                output.metrics.push(
                    Metric::gauge(name, help, us_to_seconds(times[i]))
                        .label("function_name", function)
                        .label("module", prom::label_value(&imports.module[i]))
                        .label("origin", imports.origin[i].as_str()),
                );
            }
        }
    }

    /// `slow-import` findings, slowest first, at most `top_n`; returns how many
    /// modules were over the threshold.
    fn slow_modules(&self, imports: &ImportProfile, function: &str, output: &mut Output) -> usize {
        let threshold_us = self.module_threshold_ms * US_PER_MS;
        #[allow(clippy::cast_precision_loss)]
        let is_slow = |i: usize| imports.cumulative_us[i] as f64 > threshold_us;
        let slow = (0..imports.len()).filter(|&i| is_slow(i)).count();
        for i in top_modules(imports, &imports.cumulative_us, self.top_n, is_slow) {
            let module = &imports.module[i];
            let origin = imports.origin[i].as_str();
            let imported_by = match imports.parent_of(i) {
                Some(parent) => format!("imported by {}", imports.module[parent]),
                None => "a top-level import".to_owned(),
            };
            output.findings.push(
                Finding::new(
                    "slow-import",
                    Severity::Warning,
                    format!(
                        "Importing {module} ({origin}, {imported_by}) took {} including its own imports ({} itself), over the {} threshold.",
                        human::ms(us_to_ms(imports.cumulative_us[i])),
                        human::ms(us_to_ms(imports.self_us[i])),
                        human::ms(self.module_threshold_ms),
                    ),
                )
                .label("function_name", function)
                .label("module", prom::label_value(module))
                .label("origin", origin),
            );
        }
        slow
    }

    /// The import phase's share of the init duration, and an `import-share`
    /// finding when it exceeds `max_import_share`.
    fn import_share(&self, phase_us: u64, init_ms: f64, function: &str, output: &mut Output) {
        let phase_ms = us_to_ms(phase_us);
        let share = phase_ms / init_ms;
        output.metrics.push(
            Metric::gauge(
                INIT_SHARE_RATIO,
                "Share of the last profiled cold start's init duration spent importing modules.",
                share,
            )
            .label("function_name", function),
        );
        if share > self.max_import_share {
            output.findings.push(
                Finding::new(
                    "import-share",
                    Severity::Warning,
                    format!(
                        "Imports took {} of the {} init ({}), over the {} allowed; defer heavy imports to first use.",
                        human::ms(phase_ms),
                        human::ms(init_ms),
                        human::percent(share),
                        human::percent(self.max_import_share),
                    ),
                )
                .label("function_name", function),
            );
        }
    }
}

/// Indices of the `n` modules with the largest `times` among those `keep`
/// accepts, largest first; ties keep import order, and a module name that
/// appears twice counts once. O(m log m + m·n) for m modules, so `n` must stay
/// small (it is at most `MAX_TOP_N`).
fn top_modules(
    imports: &ImportProfile,
    times: &[u64],
    n: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..imports.len()).filter(|&i| keep(i)).collect();
    order.sort_by(|&a, &b| times[b].cmp(&times[a]).then(a.cmp(&b)));
    let mut top: Vec<usize> = Vec::with_capacity(n.min(order.len()));
    for i in order {
        if top.len() == n {
            break;
        }
        if !top.iter().any(|&j| imports.module[j] == imports.module[i]) {
            top.push(i);
        }
    }
    top
}

/// The import phase: the cumulative time of every top-level module.
fn import_phase_us(imports: &ImportProfile) -> u64 {
    imports
        .parent
        .iter()
        .zip(&imports.cumulative_us)
        .filter(|(parent, _)| **parent == -1)
        .map(|(_, cumulative)| *cumulative)
        .sum()
}

/// The init duration of the batch's first cold start, if it is known.
fn cold_start_init_ms(batch: &Batch) -> Option<f64> {
    let invocations = &batch.invocations;
    invocations
        .cold_start
        .iter()
        .zip(&invocations.init_duration_ms)
        .find(|(cold, init)| **cold && init.is_finite() && **init > 0.0)
        .map(|(_, init)| *init)
}

#[allow(clippy::cast_precision_loss)]
fn us_to_seconds(us: u64) -> f64 {
    us as f64 / US_PER_SECOND
}

#[allow(clippy::cast_precision_loss)]
fn us_to_ms(us: u64) -> f64 {
    us as f64 / US_PER_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyrometer_plugin_kit::config::pairs;
    use pyrometer_plugin_kit::log::MemoryLog;
    use pyrometer_plugin_kit::{FunctionInfo, Origin, configure, fixtures};

    fn profile(modules: &[(&str, i32, u64, u64)]) -> ImportProfile {
        ImportProfile {
            module: modules.iter().map(|m| m.0.to_owned()).collect(),
            parent: modules.iter().map(|m| m.1).collect(),
            self_us: modules.iter().map(|m| m.2).collect(),
            cumulative_us: modules.iter().map(|m| m.3).collect(),
            origin: vec![Origin::SitePackages; modules.len()],
        }
    }

    fn batch(imports: ImportProfile, init_ms: f64) -> Batch {
        let mut batch = Batch {
            function: FunctionInfo {
                name: "orders".into(),
                ..FunctionInfo::default()
            },
            imports: Some(imports),
            ..Batch::default()
        };
        let inv = &mut batch.invocations;
        inv.request_id.push("r1".into());
        inv.start_unix_ms.push(0.0);
        inv.cold_start.push(true);
        inv.status.push(Default::default());
        inv.duration_ms.push(10.0);
        inv.init_duration_ms.push(init_ms);
        inv.gc_collections.push(0);
        for column in [
            &mut inv.billed_duration_ms,
            &mut inv.max_memory_used_mb,
            &mut inv.memory_size_mb,
            &mut inv.rss_bytes,
            &mut inv.cpu_user_ms,
            &mut inv.cpu_system_ms,
            &mut inv.gc_pause_ms,
            &mut inv.allocated_blocks,
            &mut inv.post_runtime_ms,
        ] {
            column.push(f64::NAN);
        }
        batch
    }

    fn run(config: &[(&str, &str)], batch: &Batch) -> Output {
        let mut plugin: SlowImports = configure(&pairs(config)).expect("config");
        pyrometer_plugin_kit::analyze(&mut plugin, batch, &mut MemoryLog::default())
            .expect("analyze")
    }

    /// handler (function code) → boto3 → botocore; json is cheap.
    fn boto_profile() -> ImportProfile {
        profile(&[
            ("handler", -1, 2_000, 452_000),
            ("boto3", 0, 50_000, 450_000),
            ("botocore", 1, 400_000, 400_000),
            ("json", -1, 1_000, 1_000),
        ])
    }

    #[test]
    fn ranks_by_self_and_cumulative() {
        let output = run(&[("top_n", "2")], &batch(boto_profile(), 1_000.0));
        let modules = |name: &str| -> Vec<(String, f64)> {
            output
                .metrics
                .iter()
                .filter(|m| m.name == name)
                .map(|m| (m.label_value("module").unwrap_or("").to_owned(), m.value))
                .collect()
        };
        assert_eq!(
            modules(SELF_SECONDS),
            vec![("botocore".into(), 0.4), ("boto3".into(), 0.05)]
        );
        assert_eq!(
            modules(CUMULATIVE_SECONDS),
            vec![("handler".into(), 0.452), ("boto3".into(), 0.45)]
        );
    }

    #[test]
    fn slow_modules_are_capped_at_top_n() {
        let output = run(&[("top_n", "2")], &batch(boto_profile(), 10_000.0));
        let slow: Vec<&str> = output
            .findings
            .iter()
            .filter(|f| f.rule == "slow-import")
            .filter_map(|f| f.label_value("module"))
            .collect();
        // Three modules are over 100 ms; the two slowest are reported.
        assert_eq!(slow, vec!["handler", "boto3"]);
    }

    #[test]
    fn import_share_compares_top_level_imports_with_init() {
        // Phase = handler + json = 453 ms.
        let over = run(&[], &batch(boto_profile(), 800.0));
        let share = over.findings.iter().find(|f| f.rule == "import-share");
        assert!(share.is_some_and(|f| f.severity == Severity::Warning));
        let ratio = over.metrics.iter().find(|m| m.name == INIT_SHARE_RATIO);
        assert!(ratio.is_some_and(|m| (m.value - 0.453 / 0.8).abs() < 1e-9));
        let phase = over.metrics.iter().find(|m| m.name == PHASE_SECONDS);
        assert!(phase.is_some_and(|m| (m.value - 0.453).abs() < 1e-9));

        let under = run(&[], &batch(boto_profile(), 2_000.0));
        assert!(!under.findings.iter().any(|f| f.rule == "import-share"));

        let unknown = run(&[], &batch(boto_profile(), f64::NAN));
        assert!(!unknown.findings.iter().any(|f| f.rule == "import-share"));
        assert!(!unknown.metrics.iter().any(|m| m.name == INIT_SHARE_RATIO));
    }

    #[test]
    fn duplicate_module_names_count_once() {
        let imports = profile(&[("a", -1, 5, 5), ("a", -1, 4, 4), ("b", -1, 3, 3)]);
        assert_eq!(
            top_modules(&imports, &imports.self_us, 2, |_| true),
            vec![0, 2]
        );
        assert_eq!(
            top_modules(&imports, &imports.self_us, 5, |i| i > 0),
            vec![1, 2]
        );
    }

    #[test]
    fn no_profile_no_output() {
        let mut b = batch(boto_profile(), 1_000.0);
        b.imports = None;
        assert_eq!(run(&[], &b), Output::default());
    }

    #[test]
    fn config_errors_name_the_knob() {
        for (config, needle) in [
            (vec![("top_n", "0")], "top_n"),
            (vec![("top_n", "1000")], "top_n"),
            (vec![("max_import_share", "1.5")], "max_import_share"),
            (
                vec![("module_threshold", "5")],
                "unknown config key 'module_threshold'",
            ),
        ] {
            let err = configure::<SlowImports>(&pairs(&config)).expect_err("bad config");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn fixtures() {
        fixtures::run_all::<SlowImports>(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/slow-imports"),
        );
    }
}

//! A realistic report for the views' tests: two environments of ten
//! invocations, an import tree of about seventy modules with one slow module
//! (`app.templates`), a failed import, a slow memory leak, GC activity,
//! findings from two plugins and one plugin failure.
//!
//! Every figure is a short decimal so the JSON form reads back exactly.

use crate::model::{
    Finding, FunctionInfo, GcGeneration, ImportProfile, ImportedModule, InitBreakdown, InitReport,
    Invocation, Origin, PythonInit, PythonRuntime, Severity, Status,
};

use super::{EnvironmentRun, LambdaReport};

/// The slow module the views must name.
pub(crate) const SLOW_MODULE: &str = "app.templates";

/// A tiny deterministic generator, so figures look measured but tests repeat.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// Builds an import profile from `(name, parent, self µs, origin)` rows, with
/// cumulative times computed bottom-up as the probe reports them.
pub(crate) fn profile(rows: &[(&str, Option<usize>, u64, Origin)]) -> ImportProfile {
    let mut modules: Vec<ImportedModule> = rows
        .iter()
        .map(|&(name, parent, self_us, origin)| ImportedModule {
            module: name.to_owned(),
            parent,
            self_us,
            cumulative_us: self_us,
            origin,
            error: None,
        })
        .collect();
    for i in (0..modules.len()).rev() {
        if let Some(p) = modules[i].parent {
            let cumulative = modules[i].cumulative_us;
            modules[p].cumulative_us += cumulative;
        }
    }
    ImportProfile { modules }
}

/// The import tree of the example app's cold start.
pub(crate) fn import_profile() -> ImportProfile {
    use Origin::{Builtin, FunctionCode, Layer, SitePackages, Stdlib};
    let mut rng = Lcg(7);
    let mut rows: Vec<(String, Option<usize>, u64, Origin)> = Vec::new();
    let push = |rows: &mut Vec<(String, Option<usize>, u64, Origin)>,
                name: &str,
                parent: Option<usize>,
                self_us: u64,
                origin: Origin| {
        rows.push((name.to_owned(), parent, self_us, origin));
        rows.len() - 1
    };
    let json = push(&mut rows, "json", None, 310, Stdlib);
    for name in ["json.decoder", "json.scanner", "json.encoder"] {
        let us = 80 + rng.next(400);
        push(&mut rows, name, Some(json), us, Stdlib);
    }
    let _ = push(&mut rows, "_json", Some(json + 2), 45, Builtin);
    let urllib = push(&mut rows, "urllib.request", None, 1_900, Stdlib);
    let http = push(&mut rows, "http.client", Some(urllib), 1_200, Stdlib);
    let email = push(&mut rows, "email.parser", Some(http), 640, Stdlib);
    for name in [
        "email.feedparser",
        "email._policybase",
        "email.header",
        "email.charset",
    ] {
        let us = 100 + rng.next(700);
        push(&mut rows, name, Some(email), us, Stdlib);
    }
    let _ = push(&mut rows, "ssl", Some(http), 4_100, Stdlib);
    let _ = push(&mut rows, "_ssl", Some(http + 6), 2_300, Builtin);
    let boto3 = push(&mut rows, "boto3", None, 2_100, Layer);
    let botocore = push(&mut rows, "botocore", Some(boto3), 3_000, Layer);
    for i in 0..18 {
        let us = 200 + rng.next(3_000);
        let name = format!(
            "botocore.{}",
            ["client", "session", "loaders", "model", "endpoint", "auth"][i % 6]
        );
        let name = if i < 6 { name } else { format!("{name}_{i}") };
        push(&mut rows, &name, Some(botocore), us, Layer);
    }
    let app = push(&mut rows, "app", None, 1_400, FunctionCode);
    let config = push(&mut rows, "app.config", Some(app), 900, FunctionCode);
    let yaml = push(&mut rows, "yaml", Some(config), 2_600, SitePackages);
    for name in [
        "yaml.loader",
        "yaml.reader",
        "yaml.scanner",
        "yaml.parser",
        "yaml.composer",
        "yaml.constructor",
        "yaml.resolver",
    ] {
        let us = 150 + rng.next(1_200);
        push(&mut rows, name, Some(yaml), us, SitePackages);
    }
    let requests = push(&mut rows, "requests", Some(app), 1_800, SitePackages);
    let urllib3 = push(&mut rows, "urllib3", Some(requests), 2_200, SitePackages);
    for i in 0..16 {
        let us = 100 + rng.next(1_500);
        push(
            &mut rows,
            &format!("urllib3.util.mod{i}"),
            Some(urllib3),
            us,
            SitePackages,
        );
    }
    let _ = push(
        &mut rows,
        "charset_normalizer",
        Some(requests),
        5_300,
        SitePackages,
    );
    let _ = push(&mut rows, "idna", Some(requests), 1_100, SitePackages);
    let _ = push(&mut rows, SLOW_MODULE, Some(app), 182_400, FunctionCode);
    let _ = push(&mut rows, "simplejson", Some(app), 95, SitePackages);
    let rows: Vec<(&str, Option<usize>, u64, Origin)> = rows
        .iter()
        .map(|(name, parent, us, origin)| (name.as_str(), *parent, *us, *origin))
        .collect();
    let mut profile = profile(&rows);
    if let Some(failed) = profile
        .modules
        .iter_mut()
        .find(|m| m.module == "simplejson")
    {
        failed.error = Some("ModuleNotFoundError".into());
    }
    profile
}

fn init_report(env: usize) -> InitReport {
    let imports = import_profile();
    let handler_module = imports.modules.iter().position(|m| m.module == "app");
    let handler_ms =
        handler_module.map_or(0.0, |i| imports.modules[i].cumulative_us as f64 / 1000.0);
    let total_import_ms: f64 = imports
        .modules
        .iter()
        .filter(|m| m.parent.is_none())
        .map(|m| m.cumulative_us as f64 / 1000.0)
        .sum();
    let interpreter_ms = 18.5 + env as f64;
    let rest_ms = 9.25;
    let init_ms = interpreter_ms + total_import_ms + rest_ms;
    InitReport {
        init_type: "on-demand".into(),
        init_duration_ms: Some(init_ms),
        init_status: Some("success".into()),
        error_type: None,
        python: Some(PythonInit {
            python: "cpython-3.12.3".into(),
            exec_unix_us: Some(1_700_000_000_000_000),
            probe_start_unix_us: 1_700_000_000_018_500,
            ready_unix_us: 1_700_000_000_300_000,
            probe_init_us: 420,
            modules_before_probe: 31,
            modules_at_ready: 31 + imports.modules.len() as u64,
            import_phase_us: (total_import_ms * 1000.0) as u64,
            handler_load_us: Some((handler_ms * 1000.0) as u64),
            handler: Some("app.handler".into()),
            handler_module,
            gc_collections: 14,
            gc_pause_us: 2_300,
            ..PythonInit::default()
        }),
        breakdown: Some(InitBreakdown {
            interpreter_ms,
            imports_ms: total_import_ms - handler_ms,
            handler_module_ms: handler_ms,
            rest_ms,
        }),
        imports: Some(imports),
    }
}

fn invocation(env: usize, i: usize) -> Invocation {
    let cold = i == 0;
    let duration_ms = if cold {
        84.5
    } else {
        4.0 + ((i * 37 + env * 11) % 60) as f64 / 10.0
    };
    let rss = 41_943_040.0 + (env as f64) * 1_048_576.0 + (i as f64) * 262_144.0;
    let status = if env == 1 && i == 6 {
        Status::Error
    } else {
        Status::Success
    };
    Invocation {
        request_id: format!("req-{env}-{i}"),
        start_unix_ms: 1_700_000_001_000.0 + (env * 100_000 + i * 1_000) as f64,
        cold_start: cold,
        status,
        duration_ms,
        billed_duration_ms: Some(duration_ms.ceil()),
        init_duration_ms: cold.then_some(480.0),
        max_memory_used_mb: Some(64.0),
        memory_size_mb: Some(512.0),
        rss_bytes: Some(rss),
        cpu_user_ms: Some(duration_ms * 0.75),
        cpu_system_ms: Some(0.5),
        open_fds: Some(9.0),
        threads: Some(1.0),
        gc_collections: 3 + (i % 4) as u32,
        gc_pause_ms: Some(0.125 * (1 + i % 3) as f64),
        allocated_blocks: Some(120_000.0 + 800.0 * i as f64),
        post_runtime_ms: Some(0.5),
        error_type: (status == Status::Error).then(|| "ValueError".into()),
        partial: false,
        python: Some(PythonRuntime {
            gc: [
                GcGeneration {
                    collections: 2 + (i % 4) as u64,
                    pause_ns: 90_000,
                    collected: 1_200,
                    uncollectable: 0,
                },
                GcGeneration {
                    collections: 1,
                    pause_ns: 35_000,
                    collected: 300,
                    uncollectable: 0,
                },
                GcGeneration::default(),
            ],
            allocated_blocks: 120_000 + 800 * i as u64,
            modules: 412,
            threads: 1,
            rss_bytes: Some(rss as u64),
            max_rss_bytes: Some(rss as u64),
            cpu_user_us: Some((duration_ms * 750.0) as u64),
            cpu_system_us: Some(500),
            loop_lag_max_us: None,
            loop_pending_tasks: None,
            imports: 0,
        }),
    }
}

/// The realistic report.
pub(crate) fn realistic_report() -> LambdaReport {
    let environments = (0..2)
        .map(|env| EnvironmentRun {
            init: init_report(env),
            invocations: (0..10).map(|i| invocation(env, i)).collect(),
        })
        .collect();
    LambdaReport {
        function: FunctionInfo {
            name: "orders-api".into(),
            version: "$LATEST".into(),
            runtime: "python3.12".into(),
            memory_size_mb: 512,
        },
        handler: "app.py:handler".into(),
        runtime_client: "builtin".into(),
        environments,
        findings: vec![
            Finding {
                plugin: "slow-imports".into(),
                rule: "slow-import".into(),
                severity: Severity::Warning,
                message: format!("{SLOW_MODULE} takes 182.4 ms to import (self time), 38% of init"),
                labels: vec![("module".into(), SLOW_MODULE.into())],
            },
            Finding {
                plugin: "slow-imports".into(),
                rule: "import-count".into(),
                severity: Severity::Info,
                message: "66 modules imported during init".into(),
                labels: vec![],
            },
            Finding {
                plugin: "leak-detector".into(),
                rule: "memory-growth".into(),
                severity: Severity::Critical,
                message:
                    "RSS grows 256 KiB per invocation; 512 MB is reached after ~1,800 invocations"
                        .into(),
                labels: vec![("environment".into(), "1".into())],
            },
        ],
        plugin_failures: vec!["cost-estimator: trap: wasm trap: out of fuel".into()],
        ..LambdaReport::default()
    }
    .summarized()
}

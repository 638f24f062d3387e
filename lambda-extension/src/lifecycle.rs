//! The Lambda lifecycle: register (first, so init is not held up), set up the
//! sources, plugins and exporters — each fail-open — then loop on
//! `event/next` until SHUTDOWN.
//!
//! Nothing here fails the function: a setup step that fails is logged and
//! counted and the extension runs without it. Only with
//! `PYROMETER_FAIL_INIT_ON_ERROR=1` does a setup fault become `init/error`.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pyrometer::collector::{Collector, CollectorConfig};
use pyrometer::config::{Config, ConfigWarning};
use pyrometer::export::Identity;
use pyrometer::metrics_sink::MetricsSink;
use pyrometer::model::FunctionInfo;

use crate::extensions_api::{Event, ExtensionsApi};
use crate::faults::Faults;
use crate::plugins::Plugins;
use crate::session::{Session, Sources, now_unix_ms};
use crate::telemetry::TelemetryFeed;
use crate::{inputs, probe};

/// Consecutive `next` failures after which the Extensions API is taken to be gone.
const MAX_NEXT_FAILURES: u32 = 3;
/// How long an invocation may stay open in the collector before it is
/// completed as partial: Lambda's longest timeout plus a margin.
const COLLECTOR_DEADLINE_MS: f64 = 900_000.0 + 1_000.0;

/// Runs the extension until SHUTDOWN (exit 0) or until Lambda is unreachable.
pub(crate) fn run(config: Config, warnings: Vec<ConfigWarning>) -> ExitCode {
    let started = Instant::now();
    let Some((api, runtime_api)) = register() else {
        return ExitCode::SUCCESS;
    };
    let mut session = match setup(&api, &runtime_api, &config, warnings) {
        Ok(session) => session,
        Err(faults) => {
            let message = format!("setup faults: {}", faults.summary());
            if let Err(e) = api.init_error("Extension.PyrometerSetup", &message) {
                tracing::error!("init/error failed: {e:#}");
            }
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(elapsed = ?started.elapsed(), "ready");
    let mut failures = 0;
    loop {
        match api.next() {
            Ok(Event::Invoke {
                request_id,
                deadline_ms,
            }) => {
                failures = 0;
                session.on_invoke(&request_id, deadline_ms);
            }
            Ok(Event::Shutdown {
                reason,
                deadline_ms,
            }) => {
                let deadline = instant_at(deadline_ms)
                    .checked_sub(config.shutdown_margin)
                    .unwrap_or_else(Instant::now);
                session.on_shutdown(deadline);
                tracing::info!(%reason, faults = %session.faults.summary(), "shutdown");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                failures += 1;
                session.faults.report("next", format!("{e:#}"));
                if failures >= MAX_NEXT_FAILURES {
                    let _ = api.exit_error("Extension.NextFailed", &format!("{e:#}"));
                    return ExitCode::SUCCESS;
                }
            }
        }
    }
}

/// Registers first, so Lambda's init is not held up; `None` when there is no
/// Extensions API to talk to (the extension then steps aside: not registered,
/// Lambda does not wait for it).
fn register() -> Option<(ExtensionsApi, String)> {
    let Ok(runtime_api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        tracing::error!("AWS_LAMBDA_RUNTIME_API is not set: not running in Lambda");
        return None;
    };
    let name = extension_name();
    let mut last_error = None;
    // A failed register means the environment fails to init, so a transient
    // error (a refused or reset connection) is worth a few quick retries.
    for backoff_ms in REGISTER_BACKOFF_MS {
        match ExtensionsApi::register(&runtime_api, &name) {
            Ok(api) => return Some((api, runtime_api)),
            Err(e) => {
                tracing::warn!("register failed, retrying in {backoff_ms} ms: {e:#}");
                last_error = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(backoff_ms));
            }
        }
    }
    match ExtensionsApi::register(&runtime_api, &name) {
        Ok(api) => Some((api, runtime_api)),
        Err(e) => {
            let earlier = last_error
                .map(|e| format!(" (previous attempt: {e:#})"))
                .unwrap_or_default();
            tracing::error!("cannot register with the Extensions API: {e:#}{earlier}");
            None
        }
    }
}

/// Pauses between register attempts: four attempts within 160 ms.
const REGISTER_BACKOFF_MS: [u64; 3] = [10, 50, 100];

/// Starts the sources, loads the plugins and builds the exporters, each
/// fail-open. `Err` only when a step failed and the user opted into failing
/// init (`PYROMETER_FAIL_INIT_ON_ERROR=1`).
fn setup(
    api: &ExtensionsApi,
    runtime_api: &str,
    config: &Config,
    warnings: Vec<ConfigWarning>,
) -> Result<Session, Faults> {
    let mut faults = Faults::default();
    for w in warnings {
        let message = format!("{}: {} (using the default)", w.key, w.message);
        faults.report("config", message);
    }
    let (tx, rx) = inputs::channel();
    let telemetry = TelemetryFeed::start(runtime_api, tx.clone())
        .map_err(|e| faults.report("telemetry", format!("cannot start the listener: {e:#}")))
        .ok();
    if let Some(feed) = &telemetry
        && let Err(e) = feed.subscribe(api)
    {
        faults.report("telemetry", format!("cannot subscribe: {e:#}"));
    }
    if let Err(e) = probe::start(&config.probe_socket, tx) {
        let path = config.probe_socket.display();
        faults.report("probe", format!("cannot bind {path}: {e}"));
    }
    // Loaded before `next` only when a plugin that fails must fail the init.
    let plugins = if config.fail_init_on_error {
        Plugins::now(&config.plugins, &mut faults)
    } else {
        Plugins::start(&config.plugins, &mut faults)
    };
    let function = function_from_env();
    let identity = Identity::for_function(&function, Identity::instance_from_env());
    let (sink, errors) = MetricsSink::lenient(&config.export, identity.clone());
    faults.exporters_left_out(errors);
    if config.fail_init_on_error && faults.any() {
        return Err(faults);
    }
    let mut collector = Collector::new(CollectorConfig {
        deadline_ms: COLLECTOR_DEADLINE_MS,
        // Without a probe in the function, runtimeDone completes invocations;
        // the probe's init record switches the collector to the probe.
        expect_probe: false,
    });
    // Lambda delivers the init's telemetry once the environment is thawed for
    // its first INVOKE, which may come first: the variable says at once
    // whether that invocation is a cold start (not with provisioned concurrency).
    let init_type = std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE")
        .ok()
        .filter(|t| !t.is_empty());
    if let Some(init_type) = &init_type {
        collector.set_environment_init_type(init_type);
    }
    let mut session = Session::new(
        collector,
        Sources {
            inputs: rx,
            telemetry,
        },
        sink,
        plugins,
        function,
        config.flush,
        faults,
    );
    if init_type.as_deref() == Some(SNAP_START) {
        session.identify_after_restore(config.export.clone(), identity);
    }
    Ok(session)
}

/// `AWS_LAMBDA_INITIALIZATION_TYPE` of an environment that runs from a SnapStart snapshot.
const SNAP_START: &str = "snap-start";

/// Lambda requires the registered name to be the executable's file name.
fn extension_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .and_then(|p| Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pyrometer-extension".to_owned())
}

/// The function as Lambda describes it to extensions.
fn function_from_env() -> FunctionInfo {
    let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    FunctionInfo {
        name: var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "unknown".to_owned()),
        version: var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|| "$LATEST".to_owned()),
        runtime: "python".to_owned(),
        memory_size_mb: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|m| m.parse().ok())
            .unwrap_or(0),
    }
}

/// The instant of `unix_ms` (ms since the Unix epoch); now if it has passed.
fn instant_at(unix_ms: u64) -> Instant {
    let left = (unix_ms as f64 - now_unix_ms()).max(0.0);
    Instant::now() + Duration::from_secs_f64(left / 1000.0)
}

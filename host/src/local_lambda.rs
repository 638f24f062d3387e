//! `pyrometer lambda`, as a library: run a Python Lambda handler under the
//! local emulator with the probe injected as Lambda injects it (through
//! `AWS_LAMBDA_EXEC_WRAPPER`), join telemetry, probe records and procfs samples
//! in the collector, run the plugins after every invocation, and return a
//! [`LambdaReport`].
//!
//! Data enters from three places — the emulator's telemetry events, the probe's
//! datagrams on a Unix socket, procfs samples of the runtime process taken
//! around each invocation — and leaves as the report plus, when exporters are
//! configured, metrics pushed on every flush.
//!
//! With a layer zip ([`LocalLambdaConfig::layer`]) the function runs as it
//! would with the layer attached in Lambda: the zip is unpacked into a
//! directory playing `/opt`, its `extensions/*` start as external extensions
//! and, when it is pyrometer's layer, its exec wrapper starts the runtime.
//! The layer's extension then owns the probe's socket, as in Lambda, and
//! this run measures what the platform sees: telemetry and procfs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::collector::{Collector, CollectorConfig, Drained, PlatformEvent};
use crate::emulator::{Emulator, EmulatorConfig, EmulatorError, ShutdownReason};
use crate::export::{ExportConfig, Identity};
use crate::layer::{LayerError, MountedLayer};
use crate::metrics_sink::MetricsSink;
use crate::model::{Batch, FunctionInfo, Invocation, Status};
use crate::plugins::{PluginSet, PluginSpec};
use crate::python_assets::{self, ProbeInstall};
use crate::report::{EnvironmentRun, LambdaReport, SCHEMA};
use crate::sources::probe_socket::ProbeSocket;
use crate::sources::procfs::ProcfsSampler;

/// Which Lambda runtime client runs the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeClient {
    /// The minimal stdlib runtime loop shipped with the probe: nothing to install.
    Builtin,
    /// AWS's `awslambdaric` from PyPI, as in Lambda container images.
    Awslambdaric,
}

impl RuntimeClient {
    /// The name used in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Awslambdaric => "awslambdaric",
        }
    }
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct LocalLambdaConfig {
    /// `path/to/app.py:function` or `module.function` (relative to the working directory).
    pub handler: String,
    /// The event every invocation receives.
    pub event: Bytes,
    /// Invocations per execution environment.
    pub invocations: usize,
    /// Fresh execution environments, one after the other.
    pub environments: usize,
    /// Configured memory, MB.
    pub memory_mb: u32,
    /// Per-invocation timeout.
    pub timeout: Duration,
    /// The Python interpreter.
    pub python: PathBuf,
    /// The runtime client.
    pub runtime: RuntimeClient,
    /// External extension executables, started like `/opt/extensions/*`.
    pub extensions: Vec<PathBuf>,
    /// A Lambda layer zip attached to the function: unpacked as `/opt`, its
    /// extensions started, its exec wrapper (if pyrometer's) used.
    pub layer: Option<PathBuf>,
    /// Plugins run after every invocation.
    pub plugins: Vec<PluginSpec>,
    /// The function name shown in reports and metrics.
    pub function_name: String,
    /// Exporters flushed after every invocation (one Pushgateway group /
    /// remote-write `instance` per execution environment); none by default.
    pub export: Option<ExportConfig>,
}

impl LocalLambdaConfig {
    /// Defaults: one environment, 10 invocations, `{}` as event, 128 MB, 3 s,
    /// `python3`, the built-in runtime client, no extensions, no plugins.
    pub fn new(handler: impl Into<String>) -> Self {
        Self {
            handler: handler.into(),
            event: Bytes::from_static(b"{}"),
            invocations: 10,
            environments: 1,
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            python: PathBuf::from("python3"),
            runtime: RuntimeClient::Builtin,
            extensions: Vec::new(),
            layer: None,
            plugins: Vec::new(),
            function_name: "local-function".into(),
            export: None,
        }
    }
}

/// Why a run could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum LocalLambdaError {
    /// The handler argument is malformed or names a missing file.
    #[error("bad handler {handler:?}: {reason}")]
    Handler {
        /// As given.
        handler: String,
        /// What is wrong.
        reason: String,
    },
    /// The handler failed during init (its module raised, or the function is missing).
    #[error("the handler failed at init: {error_type}: {message}\n{traceback}")]
    InitFailed {
        /// Lambda's error type, e.g. `Runtime.ImportModuleError`.
        error_type: String,
        /// The error message.
        message: String,
        /// The stack trace, one frame per line.
        traceback: String,
    },
    /// The emulator failed.
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] crate::plugins::LoadError),
    /// An exporter's configuration is invalid.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// The layer zip could not be unpacked.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Setting up (probe directory, socket, plugin engine) failed.
    #[error("{0}")]
    Setup(String),
}

/// Where a run is, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Invocations finished.
    pub done: usize,
    /// Invocations planned.
    pub total: usize,
}

/// A handler argument resolved into Lambda's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedHandler {
    /// `LAMBDA_TASK_ROOT`.
    pub task_root: PathBuf,
    /// `_HANDLER` (`module.function`).
    pub handler: String,
}

/// Turns `dir/app.py:fn` into task root `dir` and `_HANDLER` `app.fn`;
/// `module.fn` keeps the working directory as task root.
pub fn resolve_handler(handler: &str, cwd: &Path) -> Result<ResolvedHandler, LocalLambdaError> {
    let bad = |reason: &str| LocalLambdaError::Handler {
        handler: handler.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some((file, function)) = handler.rsplit_once(':') {
        let path = cwd.join(file);
        if !file.ends_with(".py") {
            return Err(bad("the part before ':' must be a .py file"));
        }
        if !is_identifier(function) {
            return Err(bad("the part after ':' must be a function name"));
        }
        if !path.is_file() {
            return Err(bad(&format!("{} does not exist", path.display())));
        }
        let module = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|m| is_identifier(m))
            .ok_or_else(|| bad("the file name must be a valid Python module name"))?;
        let task_root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf());
        return Ok(ResolvedHandler {
            task_root: std::fs::canonicalize(&task_root).unwrap_or(task_root),
            handler: format!("{module}.{function}"),
        });
    }
    let Some((module, function)) = handler
        .rsplit_once('.')
        .filter(|_| !handler.ends_with(".py"))
    else {
        return Err(bad("expected FILE.py:FUNCTION or MODULE.FUNCTION"));
    };
    if !module.split('.').all(is_identifier) || !is_identifier(function) {
        return Err(bad("expected FILE.py:FUNCTION or MODULE.FUNCTION"));
    }
    Ok(ResolvedHandler {
        task_root: cwd.to_path_buf(),
        handler: handler.to_owned(),
    })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Runs the handler and reports. `progress` is called after every invocation.
pub fn run(
    config: &LocalLambdaConfig,
    mut progress: impl FnMut(Progress),
) -> Result<LambdaReport, LocalLambdaError> {
    let cwd = std::env::current_dir().map_err(|e| LocalLambdaError::Setup(e.to_string()))?;
    let resolved = resolve_handler(&config.handler, &cwd)?;
    let workdir = tempdir()?;
    let layer = config
        .layer
        .as_ref()
        .map(|zip| crate::layer::mount(zip, &workdir.join("opt")))
        .transpose()
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&workdir);
        })?;
    // The probe sends to one socket: the layer's extension's when the layer
    // brings the exec wrapper (as in Lambda), else ours.
    let layer_owns_probe = layer.as_ref().is_some_and(|l| l.exec_wrapper.is_some());
    let probe = python_assets::install(&workdir.join("probe"))
        .map_err(|e| LocalLambdaError::Setup(format!("cannot write the probe: {e}")))?;
    let socket_path = workdir.join("probe.sock");
    let mut socket = if layer_owns_probe {
        None
    } else {
        Some(ProbeSocket::bind(&socket_path).map_err(|e| {
            LocalLambdaError::Setup(format!("cannot bind {}: {e}", socket_path.display()))
        })?)
    };
    let mut plugins = PluginSet::new().map_err(|e| LocalLambdaError::Setup(format!("{e:#}")))?;
    for spec in &config.plugins {
        plugins.add(spec)?;
    }
    let mut emulator = Emulator::start(emulator_config(
        config,
        &resolved,
        &probe,
        &socket_path,
        layer.as_ref(),
    ))?;
    let function = FunctionInfo {
        name: config.function_name.clone(),
        version: "$LATEST".into(),
        runtime: "python".into(),
        memory_size_mb: config.memory_mb,
    };
    let mut report = LambdaReport {
        schema: SCHEMA.into(),
        function: function.clone(),
        handler: config.handler.clone(),
        runtime_client: config.runtime.as_str().into(),
        ..LambdaReport::default()
    };
    let mut collector = Collector::new(CollectorConfig {
        deadline_ms: config.timeout.as_secs_f64() * 1000.0 + 1000.0,
        expect_probe: !layer_owns_probe,
    });
    let total = config.invocations * config.environments;
    let mut done = 0;
    for environment in 0..config.environments {
        let mut sink = environment_sink(config.export.as_ref(), &function, environment)?;
        let mut sampler = None;
        for _ in 0..config.invocations {
            if sampler.is_none() {
                if let Some(init) = emulator.init()
                    && init.status != Status::Success
                {
                    return Err(init_failure(init.error));
                }
                sampler = emulator
                    .runtime_pid()
                    .and_then(|pid| ProcfsSampler::open(pid).ok());
            }
            let start = sampler.as_mut().and_then(|s| s.sample_tree().ok());
            let outcome = emulator.invoke(config.event.clone())?;
            let end = sampler.as_mut().and_then(|s| s.sample_tree().ok());
            feed_events(&emulator, &mut collector, &outcome.request_id, start, end);
            if let Some(socket) = socket.as_mut() {
                socket.drain_into(&mut collector);
            }
            let drained = collector.drain();
            absorb(&mut report, drained, &function, &mut plugins, &mut sink);
            done += 1;
            progress(Progress { done, total });
            if outcome.environment_reset {
                sampler = None;
            }
        }
        emulator.shutdown(ShutdownReason::Spindown);
        feed_events(&emulator, &mut collector, "", None, None);
        if let Some(socket) = socket.as_mut() {
            socket.drain_into(&mut collector);
        }
        let last = collector.finish_all();
        absorb(&mut report, last, &function, &mut plugins, &mut sink);
        sink.shutdown(std::time::Instant::now() + SHUTDOWN_FLUSH_BUDGET);
    }
    report.summary = crate::report::summary::summarize(&report.environments);
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(report)
}

fn emulator_config(
    config: &LocalLambdaConfig,
    resolved: &ResolvedHandler,
    probe: &ProbeInstall,
    socket: &Path,
    layer: Option<&MountedLayer>,
) -> EmulatorConfig {
    let python = resolve_program(&config.python).into_os_string();
    let runtime_cmd = match config.runtime {
        RuntimeClient::Builtin => vec![python, probe.runtime_script.clone().into_os_string()],
        // awslambdaric takes the handler from its arguments, which the exec
        // wrapper cannot rewrite; read it from _HANDLER after the wrapper ran.
        RuntimeClient::Awslambdaric => vec![
            "/bin/sh".into(),
            "-c".into(),
            r#"exec "$0" -m awslambdaric "$_HANDLER""#.into(),
            python,
        ],
    };
    let mut e = EmulatorConfig::new(
        runtime_cmd,
        resolved.handler.clone(),
        resolved.task_root.clone(),
    );
    e.memory_mb = config.memory_mb;
    e.timeout = config.timeout;
    e.extensions.clone_from(&config.extensions);
    e.exec_wrapper = Some(probe.exec_wrapper.clone());
    if let Some(layer) = layer {
        e.extensions_dir = Some(layer.extensions_dir.clone());
        if let Some(wrapper) = &layer.exec_wrapper {
            e.exec_wrapper = Some(wrapper.clone());
        }
        // Lambda puts a layer's python/ on the runtime's PYTHONPATH.
        let python = layer.opt.join("python");
        if python.is_dir() {
            e.python_path.push(python);
        }
    }
    e.echo_logs = std::env::var_os("PYROMETER_ECHO_LOGS").is_some();
    e.function_name.clone_from(&config.function_name);
    e.env.push((
        "PYROMETER_PROBE_SOCKET".into(),
        socket.as_os_str().to_owned(),
    ));
    e
}

/// Converts the emulator's new telemetry into collector input, attaching the
/// procfs samples taken around `request_id` right after it opens.
fn feed_events(
    emulator: &Emulator,
    collector: &mut Collector,
    request_id: &str,
    start: Option<crate::model::ProcessSample>,
    end: Option<crate::model::ProcessSample>,
) {
    for event in emulator.drain_events() {
        let Some(platform) = PlatformEvent::from_telemetry(&event) else {
            continue;
        };
        let opens_ours =
            matches!(&platform, PlatformEvent::Start { request_id: id, .. } if id == request_id);
        collector.on_platform(platform);
        if opens_ours {
            if let Some(s) = start {
                collector.on_process_sample(request_id, false, s);
            }
            if let Some(s) = end {
                collector.on_process_sample(request_id, true, s);
            }
        }
    }
}

/// The final flush's budget when an environment ends (Lambda gives 2 s to
/// extensions at SHUTDOWN).
const SHUTDOWN_FLUSH_BUDGET: Duration = Duration::from_secs(2);

/// A sink per execution environment: its own Pushgateway group / `instance`.
fn environment_sink(
    config: Option<&ExportConfig>,
    function: &FunctionInfo,
    environment: usize,
) -> Result<MetricsSink, LocalLambdaError> {
    let identity = Identity::for_function(
        function,
        format!("local-{}-{environment}", std::process::id()),
    );
    Ok(MetricsSink::new(config, identity)?)
}

/// Runs the plugins over what the collector completed (under the registry's
/// recorder, so their self-metrics are exported too), files it in the
/// report, and flushes the exporters.
fn absorb(
    report: &mut LambdaReport,
    drained: Drained,
    function: &FunctionInfo,
    plugins: &mut PluginSet,
    sink: &mut MetricsSink,
) {
    let imports = drained.inits.iter().find_map(|i| i.imports.clone());
    for init in drained.inits {
        // An init completes after its cold invocation when the probe's
        // profile arrives late: it then belongs to the entry already open.
        match report.environments.last_mut() {
            Some(env) if env.init == crate::model::InitReport::default() => env.init = init,
            _ => report.environments.push(EnvironmentRun {
                init,
                invocations: Vec::new(),
            }),
        }
    }
    if drained.invocations.is_empty() && imports.is_none() {
        return;
    }
    let batch = Batch {
        function: function.clone(),
        invocations: drained.invocations.clone(),
        imports,
    };
    let run = sink.analyze(&batch, plugins);
    sink.flush();
    for finding in run.output.findings {
        // Plugins re-state a standing finding on every flush: keep its latest word.
        report.findings.retain(|f| {
            (&f.plugin, &f.rule, &f.labels) != (&finding.plugin, &finding.rule, &finding.labels)
        });
        report.findings.push(finding);
    }
    report
        .plugin_failures
        .extend(run.failures.iter().map(ToString::to_string));
    for inv in drained.invocations {
        file_invocation(report, inv);
    }
}

/// Files an invocation under its environment: a cold one starts a new entry
/// unless its init already did.
fn file_invocation(report: &mut LambdaReport, inv: Invocation) {
    let needs_new = match report.environments.last() {
        None => true,
        Some(env) => inv.cold_start && !env.invocations.is_empty(),
    };
    if needs_new {
        report.environments.push(EnvironmentRun::default());
    }
    if let Some(env) = report.environments.last_mut() {
        env.invocations.push(inv);
    }
}

/// `program` as the user's `PATH` finds it: the emulated environment has
/// Lambda's own `PATH`, which would pick another interpreter than the one
/// the user meant.
fn resolve_program(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}

fn init_failure(error: Option<crate::emulator::FunctionError>) -> LocalLambdaError {
    let error = error.unwrap_or_default();
    LocalLambdaError::InitFailed {
        error_type: error.error_type,
        message: error.error_message,
        traceback: error.stack_trace.join("\n"),
    }
}

fn tempdir() -> Result<PathBuf, LocalLambdaError> {
    let dir = std::env::temp_dir().join(format!(
        "pyrometer-lambda-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| LocalLambdaError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_forms_resolve_like_lambda() {
        let dir = std::env::temp_dir().join(format!("pyrometer-handler-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).expect("dir");
        std::fs::write(dir.join("src/app.py"), "def handler(e, c): return 1\n").expect("write");
        let r = resolve_handler("src/app.py:handler", &dir).expect("file form");
        assert_eq!(r.handler, "app.handler");
        assert!(r.task_root.ends_with("src"));
        let r = resolve_handler("pkg.app.handler", &dir).expect("module form");
        assert_eq!(
            (r.handler.as_str(), r.task_root.as_path()),
            ("pkg.app.handler", dir.as_path())
        );
        for bad in [
            "src/app.py:",
            "src/missing.py:handler",
            "handler",
            "src/app.txt:handler",
            "a-b.c",
        ] {
            assert!(resolve_handler(bad, &dir).is_err(), "{bad}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! What flows through pyrometer: the records every stage speaks.
//!
//! Sources produce [`Invocation`]s, [`InitReport`]s and [`ImportProfile`]s, the
//! collector joins them into a [`Batch`], plugins turn a batch into
//! [`PluginOutput`] (metrics and [`Finding`]s), and exporters publish the result.
//! Every type here is plain data with a stable JSON form (serde), which is also
//! the input format of `pyrometer plugin run --input batch.json`.

use serde::{Deserialize, Serialize};

/// The function being measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionInfo {
    /// Function name (`AWS_LAMBDA_FUNCTION_NAME`, or the command outside Lambda).
    pub name: String,
    /// Function version (`$LATEST`, a number, or a build id).
    pub version: String,
    /// Runtime identifier, such as `python3.12`.
    pub runtime: String,
    /// Configured memory in MB (0 when unknown).
    pub memory_size_mb: u32,
}

/// How one invocation ended (Lambda's `runtimeDone` status vocabulary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The handler returned a result.
    #[default]
    Success,
    /// The handler raised, or the runtime posted an error response.
    Error,
    /// The invocation ran past its timeout.
    Timeout,
    /// The runtime ran out of memory.
    OutOfMemory,
    /// The runtime crashed or otherwise failed.
    Failure,
}

/// One invocation, joined from telemetry, the probe and procfs by request id.
///
/// A figure that was not measured is `None`; it crosses into plugins as NaN.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Invocation {
    /// The Lambda request id (or a generated id outside Lambda). Never a label.
    pub request_id: String,
    /// Start time, milliseconds since the Unix epoch.
    pub start_unix_ms: f64,
    /// True for the first invocation of an execution environment.
    pub cold_start: bool,
    /// How it ended.
    pub status: Status,
    /// Handler duration, milliseconds.
    pub duration_ms: f64,
    /// Billed duration from `platform.report`, milliseconds.
    pub billed_duration_ms: Option<f64>,
    /// Init duration for a cold start, milliseconds.
    pub init_duration_ms: Option<f64>,
    /// Lambda's `maxMemoryUsedMB`.
    pub max_memory_used_mb: Option<f64>,
    /// Configured memory, MB.
    pub memory_size_mb: Option<f64>,
    /// Runtime process RSS at the end of the invocation, bytes.
    pub rss_bytes: Option<f64>,
    /// User CPU time during the invocation, milliseconds.
    pub cpu_user_ms: Option<f64>,
    /// System CPU time during the invocation, milliseconds.
    pub cpu_system_ms: Option<f64>,
    /// Open file descriptors of the runtime process at the end of the
    /// invocation (procfs).
    pub open_fds: Option<f64>,
    /// Threads of the runtime process at the end of the invocation (procfs).
    pub threads: Option<f64>,
    /// Garbage collections during the invocation (all generations).
    pub gc_collections: u32,
    /// Total GC pause during the invocation, milliseconds.
    pub gc_pause_ms: Option<f64>,
    /// `sys.getallocatedblocks()` at the end of the invocation.
    pub allocated_blocks: Option<f64>,
    /// report − runtimeDone, milliseconds.
    pub post_runtime_ms: Option<f64>,
    /// The exception type (probe) or Lambda error type (runtime API) of a failed invocation.
    pub error_type: Option<String>,
    /// True when the record was completed by its deadline rather than by the
    /// probe or `runtimeDone`: some figures are missing, none are invented.
    pub partial: bool,
    /// What the probe measured inside the interpreter, when it ran.
    pub python: Option<PythonRuntime>,
}

/// Where an imported module's code came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Compiled into the interpreter, or frozen.
    Builtin,
    /// The standard library.
    #[default]
    Stdlib,
    /// A third-party package from site-packages.
    SitePackages,
    /// A Lambda layer (under `/opt`).
    Layer,
    /// The function's own code.
    FunctionCode,
}

/// One module in an import profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportedModule {
    /// Dotted module name.
    pub module: String,
    /// Index (into [`ImportProfile::modules`]) of the importing module; `None` at top level.
    pub parent: Option<usize>,
    /// Time in this module alone (find + load + exec, minus children), µs.
    pub self_us: u64,
    /// Time in this module and everything it imported, µs.
    pub cumulative_us: u64,
    /// Where the module came from.
    pub origin: Origin,
    /// The exception type, if the import failed.
    pub error: Option<String>,
}

/// The import tree of one cold start, modules in the order their imports began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportProfile {
    /// The modules; parents always precede their children.
    pub modules: Vec<ImportedModule>,
}

/// The unit of work for plugins: invocations collected since the last flush.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Batch {
    /// The function the invocations belong to.
    pub function: FunctionInfo,
    /// The invocations, oldest first.
    pub invocations: Vec<Invocation>,
    /// The import profile of the cold start in this batch, if any.
    pub imports: Option<ImportProfile>,
}

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention.
    Warning,
    /// Breaks a budget or objective.
    Critical,
}

/// A conclusion drawn from a batch, by a plugin or by the host about a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The plugin that produced it.
    pub plugin: String,
    /// Stable rule identifier (`slow-import`).
    pub rule: String,
    /// How urgent it is.
    pub severity: Severity,
    /// One sentence for a human.
    pub message: String,
    /// Bounded-cardinality labels.
    pub labels: Vec<(String, String)>,
}

/// How a plugin metric's value is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// Add the value to a total.
    Counter,
    /// Replace the previous value.
    Gauge,
    /// Record one observation.
    Histogram,
}

/// One metric sample produced by a plugin, validated by the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginMetric {
    /// The plugin that produced it.
    #[serde(default)]
    pub plugin: String,
    /// Prometheus metric name.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// HELP text.
    pub help: String,
    /// Label pairs.
    pub labels: Vec<(String, String)>,
    /// Increment, value or observation.
    pub value: f64,
}

/// What one plugin returned for one batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginOutput {
    /// Validated metrics.
    pub metrics: Vec<PluginMetric>,
    /// Findings.
    pub findings: Vec<Finding>,
}

/// Garbage-collector activity in one generation over an interval (an invocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcGeneration {
    /// Collections of this generation.
    pub collections: u64,
    /// Total pause of those collections, nanoseconds.
    pub pause_ns: u64,
    /// Objects the collections freed.
    pub collected: u64,
    /// Objects found unreachable but not freeable.
    pub uncollectable: u64,
}

/// Python runtime figures the probe measured over one invocation.
///
/// A figure that could not be read (no `/proc`, no running event loop) is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PythonRuntime {
    /// GC activity during the invocation, generations 0, 1 and 2.
    pub gc: [GcGeneration; 3],
    /// `sys.getallocatedblocks()` after the invocation (the probe's last reading:
    /// it skips the read on some invocations where the call is slow).
    pub allocated_blocks: u64,
    /// `len(sys.modules)` after the invocation.
    pub modules: u64,
    /// Python threads after the invocation.
    pub threads: u64,
    /// Resident set size after the invocation, bytes.
    pub rss_bytes: Option<u64>,
    /// Peak resident set size of the process so far, bytes.
    pub max_rss_bytes: Option<u64>,
    /// User CPU time during the invocation, µs.
    pub cpu_user_us: Option<u64>,
    /// System CPU time during the invocation, µs.
    pub cpu_system_us: Option<u64>,
    /// Worst asyncio event-loop lag since the previous invocation, µs.
    pub loop_lag_max_us: Option<u64>,
    /// Pending asyncio tasks at the loop monitor's last check.
    pub loop_pending_tasks: Option<u64>,
    /// Import records pending after the invocation (modules imported during it).
    pub imports: u64,
}

/// Where the probe learnt when the interpreter was executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecTimeSource {
    /// `PYROMETER_EXEC_UNIX_US`, set by the exec wrapper or `pyrometer` (µs resolution).
    Env,
    /// `/proc/self/stat` start time (10 ms resolution).
    Proc,
}

/// What told the probe that the application was ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadyReason {
    /// The Lambda handler's module was imported.
    #[default]
    Handler,
    /// The first invocation began.
    Invoke,
    /// The application called `pyrometer_probe.mark_ready()`.
    Explicit,
    /// The process exited before any of the above.
    Exit,
    /// A web application completed its first HTTP request (the probe's
    /// WSGI/ASGI middleware; services run by `pyrometer run`).
    Request,
    /// A web server started taking requests: a gunicorn worker loaded the
    /// application, uvicorn finished its start-up, Flask's or Django's
    /// development server began serving (services run by `pyrometer run`).
    Server,
}

impl ReadyReason {
    /// The reason as the wire format and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handler => "handler",
            Self::Invoke => "invoke",
            Self::Explicit => "explicit",
            Self::Exit => "exit",
            Self::Request => "request",
            Self::Server => "server",
        }
    }

    /// The reason [`as_str`](Self::as_str) spells `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Handler,
            Self::Invoke,
            Self::Explicit,
            Self::Exit,
            Self::Request,
            Self::Server,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

/// How a Python process got from exec to a ready handler, as the probe measured it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PythonInit {
    /// Interpreter and version, such as `cpython-3.12.1`.
    pub python: String,
    /// When the interpreter was executed, µs since the Unix epoch.
    pub exec_unix_us: Option<u64>,
    /// Where `exec_unix_us` came from.
    pub exec_time_source: Option<ExecTimeSource>,
    /// When the probe started (in `sitecustomize`), µs since the Unix epoch.
    pub probe_start_unix_us: u64,
    /// When the application became ready, µs since the Unix epoch.
    pub ready_unix_us: u64,
    /// What marked it ready.
    pub ready_reason: ReadyReason,
    /// The probe's own start-up cost, µs.
    pub probe_init_us: u64,
    /// Modules the interpreter had imported before the probe started (not profiled).
    pub modules_before_probe: u64,
    /// Modules imported at ready.
    pub modules_at_ready: u64,
    /// Time spent importing between probe start and ready (top-level cumulative sum), µs.
    pub import_phase_us: u64,
    /// Time to import the handler's module, µs.
    pub handler_load_us: Option<u64>,
    /// The user's handler, such as `app.handler`.
    pub handler: Option<String>,
    /// Position of the handler module's node in the init [`ImportProfile`].
    pub handler_module: Option<usize>,
    /// Exception type if the handler's module failed to import (`HandlerNotFound`
    /// when the function is missing): an init error.
    pub error: Option<String>,
    /// Garbage collections between probe start and ready.
    pub gc_collections: u64,
    /// Their total pause, µs.
    pub gc_pause_us: u64,
}

impl PythonInit {
    /// Interpreter start to handler ready, µs, when the exec time is known.
    pub fn start_to_ready_us(&self) -> Option<u64> {
        self.exec_unix_us
            .map(|exec| self.ready_unix_us.saturating_sub(exec))
    }
}

/// One reading of a process's (or process tree's) resource use from procfs.
///
/// Counters (`cpu_*`, context switches, I/O and network bytes) are totals
/// since the process started; subtract two samples to get an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSample {
    /// When it was taken, milliseconds since the Unix epoch.
    pub unix_ms: f64,
    /// Resident set size (VmRSS), bytes.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss_bytes: u64,
    /// Swapped-out memory (VmSwap), bytes.
    pub swap_bytes: u64,
    /// Virtual size (VmSize), bytes.
    pub virtual_bytes: u64,
    /// CPU time in user mode, milliseconds.
    pub cpu_user_ms: f64,
    /// CPU time in kernel mode, milliseconds.
    pub cpu_system_ms: f64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Voluntary context switches (the process waited: I/O, locks, sleep).
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches (the scheduler preempted it: CPU contention).
    pub involuntary_ctxt_switches: u64,
    /// Bytes read from storage (`/proc/<pid>/io` `read_bytes`); 0 if unreadable.
    pub read_bytes: u64,
    /// Bytes written to storage (`write_bytes`); 0 if unreadable.
    pub write_bytes: u64,
    /// Bytes received on all non-loopback interfaces of the process's network namespace.
    pub net_rx_bytes: u64,
    /// Bytes sent on all non-loopback interfaces of the process's network namespace.
    pub net_tx_bytes: u64,
}

/// One execution environment's init (its cold start, unless initialised
/// ahead with provisioned concurrency; with SnapStart, the restore): how long
/// it took and where the time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitReport {
    /// `on-demand`, `provisioned-concurrency` or `snap-start` (Lambda's initializationType).
    pub init_type: String,
    /// Init duration from `platform.initReport`, milliseconds; for
    /// `snap-start`, the restore's (`platform.restoreReport`), which is what
    /// the environment's first invocation waited for.
    pub init_duration_ms: Option<f64>,
    /// `success`, `error`, `timeout` or `failure` (from `platform.initReport`/`initRuntimeDone`;
    /// for `snap-start`, the restore's).
    pub init_status: Option<String>,
    /// The error type when init failed (`Runtime.ImportModuleError`, an exception type…).
    pub error_type: Option<String>,
    /// What the probe measured, when it ran.
    pub python: Option<PythonInit>,
    /// The import tree of the cold start, when the probe ran.
    pub imports: Option<ImportProfile>,
    /// Where the init time went.
    pub breakdown: Option<InitBreakdown>,
}

impl InitReport {
    /// Whether an invocation waited for this init (or SnapStart restore): not
    /// with `provisioned-concurrency`, whose environments are initialised
    /// before any request comes.
    pub fn is_cold_start(&self) -> bool {
        self.init_type != "provisioned-concurrency"
    }
}

/// The init duration split into consecutive phases, milliseconds. The parts
/// add up to the init duration; `rest_ms` is what no measurement explains
/// (runtime client start-up, extensions' init, the wait for them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitBreakdown {
    /// Init start to the probe's start: process exec and interpreter start-up
    /// (site, encodings, the modules imported before the probe could see them).
    pub interpreter_ms: f64,
    /// Imports the probe timed, excluding the handler's module.
    pub imports_ms: f64,
    /// Importing the handler's module (and what it imported).
    pub handler_module_ms: f64,
    /// The rest of init.
    pub rest_ms: f64,
}

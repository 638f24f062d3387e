//! [`EmulatorConfig`]: what function the emulator runs and under which limits,
//! with Lambda's defaults.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Lambda's default function timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lambda's init phase limit for on-demand functions.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Lambda's shutdown phase limit when external extensions are registered.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(2000);
/// Lambda's default memory size, MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Largest invocation payload and response, bytes (Lambda's synchronous 6 MB).
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Telemetry events the emulator retains for [`super::Emulator::events`] by default.
pub const DEFAULT_RETAINED_EVENTS: usize = 100_000;

/// How Lambda prepares an execution environment (`initializationType`,
/// `AWS_LAMBDA_INITIALIZATION_TYPE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InitType {
    /// Initialised when an invocation finds no environment: that invocation
    /// waits for init and is the cold start.
    #[default]
    OnDemand,
    /// Initialised ahead of any invocation (call
    /// [`Emulator::init`](super::Emulator::init) first): the first invocation
    /// is not a cold start and its `platform.report` has no `initDurationMs`.
    ProvisionedConcurrency,
    /// SnapStart: init runs as when the version is published (type
    /// `snap-start`), then each new environment is restored from the snapshot
    /// just before its first invocation (`platform.restoreStart`,
    /// `restoreRuntimeDone`, `restoreReport`). The restore is that
    /// invocation's cold start; its `platform.report` has `restoreDurationMs`
    /// and `billedRestoreDurationMs` instead of `initDurationMs`.
    SnapStart,
}

impl InitType {
    /// The value Lambda uses: `on-demand`, `provisioned-concurrency`, `snap-start`.
    pub fn as_str(self) -> &'static str {
        match self {
            InitType::OnDemand => "on-demand",
            InitType::ProvisionedConcurrency => "provisioned-concurrency",
            InitType::SnapStart => "snap-start",
        }
    }
}

impl std::fmt::Display for InitType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The function the emulator runs and the limits it runs it under.
///
/// Build it with [`EmulatorConfig::new`] and change the fields you need.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The runtime's command line (program and arguments), such as
    /// `["python3", "/path/to/pyrometer_runtime.py"]`. It is started with the
    /// task root as working directory, through [`Self::exec_wrapper`] if set.
    pub runtime_cmd: Vec<OsString>,
    /// `_HANDLER`: `module.function`, `dir/module.function` or `path/app.py:function`.
    pub handler: String,
    /// `LAMBDA_TASK_ROOT`: the function's code directory (Lambda's `/var/task`).
    pub task_root: PathBuf,
    /// The function's own environment variables, set after Lambda's (they win).
    pub env: Vec<(OsString, OsString)>,
    /// Configured memory, MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `memorySizeMB`).
    /// Reported, not enforced.
    pub memory_mb: u32,
    /// Per-invocation timeout.
    pub timeout: Duration,
    /// Init phase limit.
    pub init_timeout: Duration,
    /// How long extensions get after SHUTDOWN before SIGKILL.
    pub shutdown_timeout: Duration,
    /// External extension executables, started like `/opt/extensions/*`.
    pub extensions: Vec<PathBuf>,
    /// A directory whose executables are all started as external extensions,
    /// in name order (Lambda's `/opt/extensions`).
    pub extensions_dir: Option<PathBuf>,
    /// `AWS_LAMBDA_EXEC_WRAPPER`: a script the runtime command is passed to.
    pub exec_wrapper: Option<PathBuf>,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub function_version: String,
    /// `AWS_REGION` and `AWS_DEFAULT_REGION`.
    pub region: String,
    /// Account id in the function ARN and the register response.
    pub account_id: String,
    /// Runtime identifier: `AWS_EXECUTION_ENV` is `AWS_Lambda_<runtime_id>`.
    pub runtime_id: String,
    /// Directories appended to `PYTHONPATH` after the task root (layers' `python/`).
    pub python_path: Vec<PathBuf>,
    /// Loopback address the Runtime, Extensions and Telemetry APIs listen on (port 0: any).
    pub bind: SocketAddr,
    /// Copy the runtime's and extensions' output lines to this process's stderr.
    pub echo_logs: bool,
    /// Telemetry events retained for [`super::Emulator::events`]; the oldest go first.
    pub max_retained_events: usize,
    /// How environments are prepared: on demand (the default), with
    /// provisioned concurrency, or restored from a SnapStart snapshot.
    pub init_type: InitType,
}

impl EmulatorConfig {
    /// A configuration with Lambda's defaults for everything but what to run.
    ///
    /// ```
    /// use pyrometer::emulator::EmulatorConfig;
    /// let config = EmulatorConfig::new(["python3", "runtime.py"], "app.handler", "/srv/app");
    /// assert_eq!(config.memory_mb, 128);
    /// assert_eq!(config.timeout.as_secs(), 3);
    /// ```
    pub fn new<I, S>(
        runtime_cmd: I,
        handler: impl Into<String>,
        task_root: impl Into<PathBuf>,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        EmulatorConfig {
            runtime_cmd: runtime_cmd.into_iter().map(Into::into).collect(),
            handler: handler.into(),
            task_root: task_root.into(),
            env: Vec::new(),
            memory_mb: DEFAULT_MEMORY_MB,
            timeout: DEFAULT_TIMEOUT,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            extensions: Vec::new(),
            extensions_dir: None,
            exec_wrapper: None,
            function_name: "pyrometer-function".to_string(),
            function_version: "$LATEST".to_string(),
            region: "us-east-1".to_string(),
            account_id: "123456789012".to_string(),
            runtime_id: "python3.12".to_string(),
            python_path: Vec::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            echo_logs: false,
            max_retained_events: DEFAULT_RETAINED_EVENTS,
            init_type: InitType::OnDemand,
        }
    }

    /// The function's ARN, as the runtime and extensions see it.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.function_name
        )
    }
}

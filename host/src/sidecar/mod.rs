//! `pyrometer run`, as a library: launch a long-running Python service with
//! the probe, watch it until it exits, and serve or push what it measured.
//!
//! Data enters from the probe's datagrams (every process of the service:
//! start-up, import profile, HTTP windows from the probe's middleware,
//! wrapped calls), read on their own thread, and from procfs samples of the
//! whole process tree every `interval`. It is recorded into one
//! [`MetricsRegistry`](crate::export::MetricsRegistry) as it arrives (served
//! on `/metrics` when `listen` is set); every `window` the plugins run over
//! the window's rows and the exporters flush; at exit both happen once more
//! and a [`RunOutcome`] with the service's exit status and summary is
//! returned.

mod child;
mod service;
mod workers;

pub use child::{FORWARDED_SIGNALS, exit_code};
pub use service::{RouteSummary, ServiceState, ServiceSummary};
pub use workers::WorkerTracker;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::export::prometheus::MetricsServer;
use crate::export::{ExportConfig, Identity, MetricsRegistry, catalogue};
use crate::metrics_sink::MetricsSink;
use crate::model::{Finding, FunctionInfo};
use crate::plugins::{PluginSet, PluginSpec};
use crate::python_assets;
use crate::sources::probe::ProbeMessage;
use crate::sources::probe_socket::{ProbeSocket, ReadCloser};
use crate::sources::procfs::{ProcfsSampler, descendants_with_parents};

use child::{ProbeEnv, ServiceChild};

/// Decoded probe messages waiting for the main loop at most; beyond, they
/// are dropped and counted (`pyrometer_dropped_records_total{source="probe"}`).
const MAX_QUEUED_MESSAGES: usize = 10_000;
/// When the process tree is first sampled, at the latest.
const FIRST_SAMPLE: Duration = Duration::from_millis(100);
/// Time the final flush may take after the service exited.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// What to run and how to watch it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// Serve `/metrics` here (port 0 picks a free port).
    pub listen: Option<SocketAddr>,
    /// Plugins run every window and at exit.
    pub plugins: Vec<PluginSpec>,
    /// Exporters flushed every window and at exit.
    pub export: Option<ExportConfig>,
    /// Plugins and exporters run this often.
    pub window: Duration,
    /// The process tree is sampled this often.
    pub interval: Duration,
    /// The service's name (the `function_name` label).
    pub name: String,
    /// Its version (the `function_version` label).
    pub version: String,
}

impl RunConfig {
    /// Defaults: `/metrics` on 127.0.0.1:9464, windows of 15 s, samples every
    /// second, no plugins, no exporters, named after the command.
    pub fn new(command: Vec<OsString>) -> Self {
        let name = service_name(&command);
        Self {
            command,
            listen: Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))),
            plugins: Vec::new(),
            export: None,
            window: Duration::from_secs(15),
            interval: Duration::from_secs(1),
            name,
            version: "local".to_owned(),
        }
    }
}

/// The default `/metrics` port (OpenTelemetry's Prometheus exporter port).
pub const DEFAULT_PORT: u16 = 9464;

/// A name for the service from its command line: the script or module a
/// Python interpreter runs, the app of `gunicorn`/`uvicorn`, else the program.
pub fn service_name(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let base = |w: &str| {
        std::path::Path::new(w)
            .file_stem()
            .map_or_else(|| w.to_owned(), |s| s.to_string_lossy().into_owned())
    };
    let Some(program) = words.first().map(|p| base(p)) else {
        return "service".to_owned();
    };
    let operand = words.iter().skip(1).find(|w| !w.starts_with('-'));
    let name = match (program.as_str(), operand) {
        (p, Some(w)) if p.starts_with("python") => {
            let module = words
                .iter()
                .position(|w| w == "-m")
                .and_then(|i| words.get(i + 1));
            module.cloned().unwrap_or_else(|| base(w))
        }
        ("gunicorn" | "uvicorn" | "hypercorn" | "waitress-serve", _) => words
            .iter()
            .skip(1)
            .rfind(|w| w.contains(':') && !w.starts_with('-'))
            .and_then(|app| app.split(':').next())
            .map_or(program, str::to_owned),
        _ => program,
    };
    if name.is_empty() {
        "service".to_owned()
    } else {
        name
    }
}

/// Why `pyrometer run` could not run the service.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The probe, its socket or the `/metrics` listener could not be set up.
    #[error("{0}")]
    Setup(String),
    /// A plugin did not load.
    #[error(transparent)]
    Plugin(#[from] crate::plugins::LoadError),
    /// The command could not be started.
    #[error("cannot start {command}: {source}")]
    Spawn {
        /// The program.
        command: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How the service ended and what was measured.
#[derive(Debug)]
pub struct RunOutcome {
    /// The service's exit status, the shell's way (`128 + signal` when killed).
    pub exit_code: u8,
    /// What was measured.
    pub summary: ServiceSummary,
    /// What the plugins found, oldest first.
    pub findings: Vec<Finding>,
    /// Where `/metrics` was served.
    pub metrics_addr: Option<SocketAddr>,
}

/// Runs the service until it exits. `on_listen` is told the `/metrics`
/// address as soon as it is bound (before the service starts).
pub fn run(config: &RunConfig, on_listen: impl FnOnce(SocketAddr)) -> Result<RunOutcome, RunError> {
    let setup = |what: &str, e: std::io::Error| RunError::Setup(format!("{what}: {e}"));
    let dir = TempDir::new().map_err(|e| setup("cannot create a working directory", e))?;
    let probe = python_assets::install(&dir.0.join("probe"))
        .map_err(|e| setup("cannot write the probe", e))?;
    let socket_path = dir.0.join("probe.sock");
    let socket = ProbeSocket::bind(&socket_path)
        .map_err(|e| setup(&format!("cannot bind {}", socket_path.display()), e))?;

    let mut plugins = PluginSet::new().map_err(|e| RunError::Setup(format!("{e:#}")))?;
    for spec in &config.plugins {
        plugins.add(spec)?;
    }
    let function = FunctionInfo {
        name: config.name.clone(),
        version: config.version.clone(),
        runtime: "python".to_owned(),
        memory_size_mb: 0,
    };
    let identity = Identity::for_function(&function, Identity::instance_from_env());
    let (mut sink, export_errors) = match &config.export {
        Some(export) => MetricsSink::lenient(export, identity),
        None => (MetricsSink::without_exporters(&identity), Vec::new()),
    };
    for e in export_errors {
        tracing::warn!("exporter not started: {e}");
    }
    let registry = Arc::clone(sink.registry());
    let server = match config.listen {
        Some(addr) => Some(
            MetricsServer::bind(addr, Arc::clone(&registry))
                .map_err(|e| setup(&format!("cannot serve /metrics on {addr}"), e))?,
        ),
        None => None,
    };
    let metrics_addr = server.as_ref().map(MetricsServer::local_addr);
    if let Some(addr) = metrics_addr {
        on_listen(addr);
    }

    let reader = ProbeReader::start(socket, Arc::clone(&registry))
        .map_err(|e| setup("cannot start the probe reader", e))?;
    let exec_unix_us = unix_us();
    let started = Instant::now();
    let exited = reader.exit_notifier();
    let mut child = ServiceChild::spawn(
        &config.command,
        &ProbeEnv {
            probe_dir: &probe.dir,
            socket: &socket_path,
            exec_unix_us,
        },
        move || exited.notify(),
    )
    .map_err(|source| RunError::Spawn {
        command: config
            .command
            .first()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source,
    })?;

    let mut state = ServiceState::new(Arc::clone(&registry), exec_unix_us);
    let mut sampler = ProcfsSampler::open(child.pid()).ok();
    let mut findings = Vec::new();
    // The first sample comes early, so even a short-lived service has one.
    let mut next_sample = Instant::now() + config.interval.min(FIRST_SAMPLE);
    let mut next_window = Instant::now() + config.window;
    // Nothing polls: the loop sleeps until the next sample or window is due,
    // a probe message arrives, or the child exits.
    loop {
        let now = Instant::now();
        if now >= next_sample {
            sample(&mut sampler, child.pid(), &mut state);
            next_sample = now + config.interval;
        }
        if now >= next_window {
            window(&mut state, &function, &sink, &mut plugins, &mut findings);
            sink.flush();
            next_window = now + config.window;
        }
        if reader.receive_until(next_sample.min(next_window), &mut state) {
            break;
        }
    }
    let status = child
        .wait()
        .map_err(|e| setup("cannot collect the service's exit status", e))?;
    child.stop_forwarding();
    // Everything the service's processes sent before they exited is queued
    // in the socket by now: read it all before the last window.
    reader.finish(&mut state);
    window(&mut state, &function, &sink, &mut plugins, &mut findings);
    sink.shutdown(Instant::now() + FINAL_FLUSH);
    if let Some(server) = server {
        server.shutdown();
    }
    Ok(RunOutcome {
        exit_code: exit_code(status),
        summary: state.summary(started.elapsed().as_secs_f64()),
        findings,
        metrics_addr,
    })
}

/// Samples the tree and feeds the sample to the state (fail-open: a tree
/// that cannot be read is skipped).
fn sample(sampler: &mut Option<ProcfsSampler>, pid: u32, state: &mut ServiceState) {
    let Some(s) = sampler.as_mut() else {
        return;
    };
    match s.sample_tree() {
        Ok(sample) => state.on_sample(sample, &descendants_with_parents(pid)),
        Err(_) => *sampler = None,
    }
}

/// Ends a window: plugins over its rows, their findings kept.
fn window(
    state: &mut ServiceState,
    function: &FunctionInfo,
    sink: &MetricsSink,
    plugins: &mut PluginSet,
    findings: &mut Vec<Finding>,
) {
    if let Some(batch) = state.take_batch(function, unix_us() as f64 / 1e3) {
        let run = sink.run_plugins(&batch, plugins);
        findings.extend(run.output.findings);
    }
}

/// What reaches the main loop from the reader thread and the exit watcher.
enum Event {
    /// A decoded probe message (boxed: it dwarfs the other variant).
    Probe(Box<ProbeMessage>),
    /// The child has exited.
    Exited,
}

/// Tells the main loop the child has exited (sent from the exit watcher).
struct ExitNotifier(SyncSender<Event>);

impl ExitNotifier {
    /// Queues [`Event::Exited`], waiting for room if the queue is full: the
    /// exit must not be dropped like a surplus probe message.
    fn notify(self) {
        let _ = self.0.send(Event::Exited);
    }
}

/// The probe socket, read on its own thread (Linux queues only a few
/// datagrams per socket), into a bounded queue for the main loop. The
/// thread blocks on the socket until [`Self::finish`] shuts it down.
struct ProbeReader {
    events: Receiver<Event>,
    sender: SyncSender<Event>,
    closer: ReadCloser,
    thread: Option<JoinHandle<()>>,
}

impl ProbeReader {
    /// Starts reading; datagrams the decoder rejects and messages that find
    /// the queue full are counted in `registry`.
    fn start(mut socket: ProbeSocket, registry: Arc<MetricsRegistry>) -> std::io::Result<Self> {
        socket.set_blocking(true)?;
        let closer = socket.read_closer()?;
        let (sender, events) = mpsc::sync_channel(MAX_QUEUED_MESSAGES);
        let thread = {
            let tx = sender.clone();
            std::thread::Builder::new()
                .name("pyrometer-probe".into())
                .spawn(move || read_socket(&mut socket, &tx, &registry))?
        };
        Ok(Self {
            events,
            sender,
            closer,
            thread: Some(thread),
        })
    }

    /// A notifier for the exit watcher, sending into the same queue.
    fn exit_notifier(&self) -> ExitNotifier {
        ExitNotifier(self.sender.clone())
    }

    /// Feeds messages to `state` until `deadline`; true when the child has exited.
    fn receive_until(&self, deadline: Instant, state: &mut ServiceState) -> bool {
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(wait) {
                Ok(Event::Probe(message)) => state.on_probe(*message),
                Ok(Event::Exited) => return true,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Stops the reader after it has read everything queued in the socket,
    /// and feeds the rest.
    fn finish(mut self, state: &mut ServiceState) {
        self.closer.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        while let Ok(event) = self.events.try_recv() {
            if let Event::Probe(message) = event {
                state.on_probe(*message);
            }
        }
    }
}

impl Drop for ProbeReader {
    /// On an early return the thread is not left blocked on the socket.
    fn drop(&mut self) {
        self.closer.close();
    }
}

/// The reader thread: decode into `tx` until the socket is shut down for
/// reading and its queue is empty.
fn read_socket(socket: &mut ProbeSocket, tx: &SyncSender<Event>, registry: &MetricsRegistry) {
    loop {
        let lost = match socket.recv() {
            Ok(Ok(Some(message))) => matches!(
                tx.try_send(Event::Probe(Box::new(message))),
                Err(TrySendError::Full(_))
            ),
            Ok(Ok(None)) => false,
            Ok(Err(_)) => true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
            Err(_) => return,
        };
        if lost {
            registry.record(
                &catalogue::PYROMETER_DROPPED_RECORDS_TOTAL,
                &[("source", "probe")],
                1.0,
            );
        }
    }
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A private directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let base = std::env::temp_dir().join(format!(
            "pyrometer-run-{}-{}",
            std::process::id(),
            unix_us()
        ));
        std::fs::create_dir_all(&base)?;
        Ok(Self(base))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn services_are_named_after_what_they_run() {
        assert_eq!(service_name(&words("python3 app.py --port 1")), "app");
        assert_eq!(
            service_name(&words("python -m mysite.server")),
            "mysite.server"
        );
        assert_eq!(service_name(&words("gunicorn -w 2 shop:app")), "shop");
        assert_eq!(
            service_name(&words("gunicorn -b 127.0.0.1:80 shop:app")),
            "shop"
        );
        assert_eq!(service_name(&words("uvicorn api.main:app")), "api.main");
        assert_eq!(service_name(&words("/usr/bin/node x.js")), "node");
        assert_eq!(service_name(&[]), "service");
    }
}

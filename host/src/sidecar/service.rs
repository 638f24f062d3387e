//! What `pyrometer run` knows about the service it runs, built from the
//! probe's records and the process tree's samples.
//!
//! Data enters through [`ServiceState::on_probe`] (decoded probe messages from
//! every process of the service) and [`ServiceState::on_sample`] (procfs
//! samples of the whole process tree); both record into the
//! [`MetricsRegistry`] as they arrive, so `/metrics` is always current. It
//! leaves as one [`Batch`] per window for the plugins
//! ([`ServiceState::take_batch`]) and as the [`ServiceSummary`] at exit.
//!
//! Plugins see a service as rows of windows: each window is one row whose
//! duration is the mean request latency of the window (NaN when idle), whose
//! RSS and CPU are the tree's, and the first row after start-up carries the
//! start-up time as its init duration and the start-up import profile. Calls
//! of functions wrapped with `pyrometer_probe.wrap` are rows of their own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::collector::invocation_from_probe;
use crate::export::catalogue::{self, HTTP_DURATION_BUCKETS_SECONDS};
use crate::export::registry::MetricsRegistry;
use crate::model::{
    Batch, FunctionInfo, ImportProfile, Invocation, ProcessSample, PythonInit, ReadyReason, Status,
};
use crate::sources::probe::{
    ImportPhase, OTHER_ROUTE, ProbeHttp, ProbeMessage, ProbeRecord, UNMATCHED_ROUTE,
};

use super::workers::WorkerTracker;

/// Wrapped-function rows kept for the next window at most (older ones are dropped).
const MAX_PENDING_ROWS: usize = 10_000;
/// Processes whose forks and profiles are tracked at most.
const MAX_TRACKED_PROCESSES: usize = 1_000;
/// Distinct (method, route) pairs kept for the summary; the probe caps
/// its own series, this bounds what many processes together can add.
const MAX_ROUTES: usize = 1_000;

/// One route's requests over the whole run.
#[derive(Debug, Clone, Default)]
struct RouteStats {
    requests: u64,
    server_errors: u64,
    sum_us: u64,
    max_us: u64,
    /// Per catalogue HTTP bucket (+ overflow), not cumulative.
    buckets: Vec<u64>,
}

/// The latest HTTP figures of one process.
#[derive(Debug, Clone, Copy, Default)]
struct ProcessHttp {
    in_flight: u64,
    pending_tasks: Option<u64>,
}

/// Requests of the current window, all processes together.
#[derive(Debug, Clone, Copy, Default)]
struct WindowHttp {
    requests: u64,
    sum_us: u64,
    server_errors: u64,
    loop_lag_max_us: Option<u64>,
}

/// Everything known about the running service.
#[derive(Debug)]
pub struct ServiceState {
    registry: Arc<MetricsRegistry>,
    exec_unix_us: u64,
    python: Option<PythonInit>,
    /// Start-up import profiles and their senders: one per process role (see [`Self::on_imports`]).
    profiles: Vec<(u32, ImportProfile)>,
    profiles_in_batch: usize,
    /// Forked processes and their parents.
    fork_parents: HashMap<u32, u32>,
    /// Parents one of whose forked children's profile was taken.
    profiled_parents: HashSet<u32>,
    /// Parents of the processes the tree samples saw (spawned workers send no `fork`).
    tree_parents: HashMap<u32, u32>,
    startup_in_batch: bool,
    ready_unix_us: Option<u64>,
    ready_reason: Option<String>,
    framework: Option<String>,
    routes: BTreeMap<(String, String), RouteStats>,
    routes_dropped: u64,
    processes: HashMap<u32, ProcessHttp>,
    window: WindowHttp,
    window_start_unix_ms: f64,
    windows: u64,
    loop_lag_max_us: Option<u64>,
    rows: Vec<Invocation>,
    rows_dropped: u64,
    invocations: u64,
    first_sample: Option<ProcessSample>,
    last_sample: Option<ProcessSample>,
    window_first_sample: Option<ProcessSample>,
    peak_rss_bytes: u64,
    workers: WorkerTracker,
}

impl ServiceState {
    /// The state of a service started at `exec_unix_us`, recording into `registry`.
    pub fn new(registry: Arc<MetricsRegistry>, exec_unix_us: u64) -> Self {
        Self {
            registry,
            exec_unix_us,
            python: None,
            profiles: Vec::new(),
            profiles_in_batch: 0,
            fork_parents: HashMap::new(),
            profiled_parents: HashSet::new(),
            tree_parents: HashMap::new(),
            startup_in_batch: false,
            ready_unix_us: None,
            ready_reason: None,
            framework: None,
            routes: BTreeMap::new(),
            routes_dropped: 0,
            processes: HashMap::new(),
            window: WindowHttp::default(),
            window_start_unix_ms: exec_unix_us as f64 / 1000.0,
            windows: 0,
            loop_lag_max_us: None,
            rows: Vec::new(),
            rows_dropped: 0,
            invocations: 0,
            first_sample: None,
            last_sample: None,
            window_first_sample: None,
            peak_rss_bytes: 0,
            workers: WorkerTracker::new(),
        }
    }

    /// Takes one decoded probe message from any process of the service.
    pub fn on_probe(&mut self, message: ProbeMessage) {
        match message.record {
            ProbeRecord::Init(init) => {
                if init.init.ready_reason != ReadyReason::Exit {
                    self.mark_ready(init.init.ready_unix_us, init.init.ready_reason.as_str());
                }
                if self.python.is_none() {
                    self.python = Some(init.init);
                }
            }
            ProbeRecord::Imports(imports) if imports.phase == ImportPhase::Init => {
                self.on_imports(message.pid, imports.profile);
            }
            ProbeRecord::Fork(fork) => {
                if self.fork_parents.len() < MAX_TRACKED_PROCESSES {
                    self.fork_parents.insert(message.pid, fork.parent_pid);
                }
            }
            ProbeRecord::Invocation(call) => {
                self.invocations += 1;
                let row = invocation_from_probe(&call, message.pid);
                self.registry.record_invocation(&row);
                if self.rows.len() < MAX_PENDING_ROWS {
                    self.rows.push(row);
                } else {
                    self.rows_dropped += 1;
                }
            }
            ProbeRecord::Ready(ready) => {
                self.mark_ready(ready.ready_unix_us, ready.reason.as_str())
            }
            ProbeRecord::Http(http) => self.on_http(message.pid, &http),
            ProbeRecord::Exit(_) => {
                self.processes.remove(&message.pid);
                self.record_process_http();
            }
            ProbeRecord::Imports(_) => {}
        }
    }

    /// A process's start-up imports. A pre-fork server's workers all import
    /// the same application after the fork, so one forked child per parent
    /// speaks for its siblings; the parent's own profile (gunicorn's master,
    /// often sent only at exit) is kept beside it.
    fn on_imports(&mut self, pid: u32, profile: ImportProfile) {
        if let Some(parent) = self.fork_parents.get(&pid)
            && !self.profiled_parents.insert(*parent)
        {
            return;
        }
        if self.profiles.len() >= MAX_TRACKED_PROCESSES {
            return;
        }
        self.registry.record_import_profile(&profile);
        self.profiles.push((pid, profile));
    }

    /// Every start-up profile as one: each process's imports as more roots.
    fn imports(&self) -> Option<ImportProfile> {
        if self.profiles.is_empty() {
            return None;
        }
        let mut merged = ImportProfile::default();
        for (_, profile) in &self.profiles {
            let offset = merged.modules.len();
            merged
                .modules
                .extend(profile.modules.iter().cloned().map(|mut m| {
                    m.parent = m.parent.map(|p| p + offset);
                    m
                }));
        }
        Some(merged)
    }

    /// Start-up import time on the way to ready, µs: the slowest chain of a
    /// process's start-up imports and its ancestors' (a server's master, then
    /// one of its workers: workers import side by side, so theirs do not add).
    fn startup_import_us(&self) -> Option<u64> {
        let mut by_pid: HashMap<u32, u64> = HashMap::new();
        for (pid, profile) in &self.profiles {
            let roots = profile.modules.iter().filter(|m| m.parent.is_none());
            *by_pid.entry(*pid).or_default() += roots.map(|m| m.cumulative_us).sum::<u64>();
        }
        let parent_of = |pid: u32| {
            self.fork_parents
                .get(&pid)
                .or_else(|| self.tree_parents.get(&pid))
                .copied()
        };
        by_pid
            .keys()
            .map(|&pid| {
                // A pid reused into a cycle of stale parents ends the chain.
                let mut seen = HashSet::new();
                std::iter::successors(Some(pid), |&p| parent_of(p))
                    .take_while(|p| seen.insert(*p))
                    .filter_map(|p| by_pid.get(&p))
                    .sum()
            })
            .max()
    }

    /// The service was ready at `unix_us` (the earliest such time wins). A
    /// time before the service started is garbage (one clock, one machine)
    /// and would pin start-up to zero for good: it is ignored.
    fn mark_ready(&mut self, unix_us: u64, reason: &str) {
        if unix_us < self.exec_unix_us || self.ready_unix_us.is_some_and(|r| r <= unix_us) {
            return;
        }
        self.ready_unix_us = Some(unix_us);
        self.ready_reason = Some(reason.to_owned());
        let seconds = unix_us.saturating_sub(self.exec_unix_us) as f64 / 1e6;
        self.registry
            .record(&catalogue::PYTHON_STARTUP_DURATION_SECONDS, &[], seconds);
    }

    fn on_http(&mut self, pid: u32, http: &ProbeHttp) {
        if let Some(first) = http.first_response_unix_us {
            self.mark_ready(first, "request");
        }
        self.framework.get_or_insert_with(|| http.framework.clone());
        let bounds_s: Vec<f64> = http.bounds_us.iter().map(|b| *b as f64 / 1e6).collect();
        for series in &http.series {
            let status = series.status.to_string();
            let labels = [
                ("http_request_method", series.method.as_str()),
                ("http_route", series.route.as_str()),
                ("http_response_status_code", status.as_str()),
            ];
            self.registry.record_bucketed(
                &catalogue::HTTP_SERVER_REQUEST_DURATION_SECONDS,
                &labels,
                &bounds_s,
                &series.buckets,
                series.sum_us as f64 / 1e6,
            );
            let server_error = series.status >= 500 || series.status == 0;
            self.window.requests += series.count;
            self.window.sum_us += series.sum_us;
            if server_error {
                self.window.server_errors += series.count;
            }
            let key = (series.method.clone(), series.route.clone());
            if !self.routes.contains_key(&key) && self.routes.len() >= MAX_ROUTES {
                self.routes_dropped += series.count;
                continue;
            }
            let route = self.routes.entry(key).or_default();
            route.requests += series.count;
            route.sum_us += series.sum_us;
            route.max_us = route.max_us.max(series.max_us);
            if server_error {
                route.server_errors += series.count;
            }
            let folded =
                catalogue::fold_buckets(HTTP_DURATION_BUCKETS_SECONDS, &bounds_s, &series.buckets);
            route.buckets.resize(folded.len(), 0);
            for (total, n) in route.buckets.iter_mut().zip(folded) {
                *total += n;
            }
        }
        if let Some(lag) = http.loop_lag_max_us {
            self.window.loop_lag_max_us = Some(self.window.loop_lag_max_us.unwrap_or(0).max(lag));
            self.loop_lag_max_us = Some(self.loop_lag_max_us.unwrap_or(0).max(lag));
        }
        self.processes.insert(
            pid,
            ProcessHttp {
                in_flight: http.in_flight,
                pending_tasks: http.loop_pending_tasks,
            },
        );
        self.record_process_http();
    }

    fn record_process_http(&self) {
        let in_flight: u64 = self.processes.values().map(|p| p.in_flight).sum();
        self.registry.record(
            &catalogue::HTTP_SERVER_ACTIVE_REQUESTS,
            &[],
            in_flight as f64,
        );
        let pending: Vec<u64> = self
            .processes
            .values()
            .filter_map(|p| p.pending_tasks)
            .collect();
        if !pending.is_empty() {
            self.registry.record(
                &catalogue::PYTHON_ASYNCIO_PENDING_TASKS,
                &[],
                pending.iter().sum::<u64>() as f64,
            );
        }
    }

    /// Takes a sample of the whole process tree and the tree's shape
    /// (`(child, parent)` pairs, for worker restarts).
    pub fn on_sample(&mut self, sample: ProcessSample, tree: &[(u32, u32)]) {
        let r = &self.registry;
        r.record(
            &catalogue::PROCESS_RESIDENT_MEMORY_BYTES,
            &[],
            sample.rss_bytes as f64,
        );
        r.record(
            &catalogue::PROCESS_VIRTUAL_MEMORY_BYTES,
            &[],
            sample.virtual_bytes as f64,
        );
        r.record(&catalogue::PROCESS_OPEN_FDS, &[], sample.open_fds as f64);
        r.record(&catalogue::PROCESS_THREADS, &[], sample.threads as f64);
        let cpu_ms = |s: &ProcessSample| s.cpu_user_ms + s.cpu_system_ms;
        let previous = self.last_sample.as_ref().map_or(0.0, cpu_ms);
        // A worker that exited takes its CPU time out of the tree's sum:
        // the counter only ever moves forward.
        let delta = (cpu_ms(&sample) - previous).max(0.0);
        r.record(&catalogue::PROCESS_CPU_SECONDS_TOTAL, &[], delta / 1e3);
        for &(pid, parent) in tree {
            if self.tree_parents.len() < MAX_TRACKED_PROCESSES
                || self.tree_parents.contains_key(&pid)
            {
                self.tree_parents.insert(pid, parent);
            }
        }
        let restarts = self.workers.observe(tree);
        if restarts > 0 {
            r.record(
                &catalogue::PYROMETER_WORKER_RESTARTS_TOTAL,
                &[],
                restarts as f64,
            );
        }
        self.peak_rss_bytes = self.peak_rss_bytes.max(sample.rss_bytes);
        self.first_sample.get_or_insert(sample);
        self.window_first_sample.get_or_insert(sample);
        self.last_sample = Some(sample);
    }

    /// Ends the window at `now_unix_ms`: the rows for the plugins (wrapped
    /// calls, then the window's own row) and, the first time it is known,
    /// the start-up import profile. `None` when nothing happened.
    pub fn take_batch(&mut self, function: &FunctionInfo, now_unix_ms: f64) -> Option<Batch> {
        let mut invocations = std::mem::take(&mut self.rows);
        let window = std::mem::take(&mut self.window);
        if let Some(lag) = window.loop_lag_max_us {
            self.registry.record(
                &catalogue::PYTHON_ASYNCIO_LOOP_LAG_SECONDS,
                &[],
                lag as f64 / 1e6,
            );
        }
        let first = self.window_first_sample.take();
        if let Some(row) = self.window_row(&window, first) {
            invocations.push(row);
        }
        let imports = if self.profiles.len() > self.profiles_in_batch {
            self.profiles_in_batch = self.profiles.len();
            self.imports()
        } else {
            None
        };
        self.window_start_unix_ms = now_unix_ms;
        if invocations.is_empty() && imports.is_none() {
            return None;
        }
        Some(Batch {
            function: function.clone(),
            invocations,
            imports,
        })
    }

    fn window_row(
        &mut self,
        window: &WindowHttp,
        first: Option<ProcessSample>,
    ) -> Option<Invocation> {
        let last = self.last_sample?;
        if window.requests == 0 && first.is_none() {
            return None;
        }
        self.windows += 1;
        let startup_ms = self
            .ready_unix_us
            .filter(|_| !self.startup_in_batch)
            .map(|ready| ready.saturating_sub(self.exec_unix_us) as f64 / 1e3);
        self.startup_in_batch |= startup_ms.is_some();
        let (cpu_user_ms, cpu_system_ms) = match first {
            Some(f) => (
                (last.cpu_user_ms - f.cpu_user_ms).max(0.0),
                (last.cpu_system_ms - f.cpu_system_ms).max(0.0),
            ),
            None => (0.0, 0.0),
        };
        let failed = window.server_errors > 0;
        Some(Invocation {
            request_id: format!("window-{}", self.windows),
            start_unix_ms: self.window_start_unix_ms,
            cold_start: startup_ms.is_some(),
            status: if failed {
                Status::Error
            } else {
                Status::Success
            },
            duration_ms: if window.requests == 0 {
                f64::NAN
            } else {
                window.sum_us as f64 / window.requests as f64 / 1e3
            },
            init_duration_ms: startup_ms,
            rss_bytes: Some(last.rss_bytes as f64),
            cpu_user_ms: Some(cpu_user_ms),
            cpu_system_ms: Some(cpu_system_ms),
            error_type: failed.then(|| "http-5xx".to_owned()),
            partial: false,
            ..Invocation::default()
        })
    }

    /// The run so far, for the report at exit.
    pub fn summary(&self, duration_s: f64) -> ServiceSummary {
        let mut routes: Vec<RouteSummary> = self
            .routes
            .iter()
            .map(|((method, route), s)| RouteSummary {
                method: method.clone(),
                route: route.clone(),
                requests: s.requests,
                server_errors: s.server_errors,
                mean_ms: s.sum_us as f64 / s.requests.max(1) as f64 / 1e3,
                p99_ms: bucket_quantile(&s.buckets, 0.99).map(|s| s * 1e3),
                max_ms: s.max_us as f64 / 1e3,
            })
            .collect();
        routes.sort_by(|a, b| b.mean_ms.total_cmp(&a.mean_ms));
        let requests: u64 = routes.iter().map(|r| r.requests).sum();
        let imports = self.imports();
        // A module several processes imported counts once, at its slowest.
        let mut slowest: HashMap<&str, u64> = HashMap::new();
        for m in imports.iter().flat_map(|p| p.modules.iter()) {
            let us = slowest.entry(m.module.as_str()).or_default();
            *us = (*us).max(m.cumulative_us);
        }
        let mut slowest_imports: Vec<(String, f64)> = slowest
            .into_iter()
            .map(|(module, us)| (module.to_owned(), us as f64 / 1e3))
            .collect();
        slowest_imports.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        slowest_imports.truncate(10);
        ServiceSummary {
            python: self.python.as_ref().map(|p| p.python.clone()),
            framework: self.framework.clone(),
            startup_ms: self
                .ready_unix_us
                .map(|r| r.saturating_sub(self.exec_unix_us) as f64 / 1e3),
            ready_reason: self.ready_reason.clone(),
            import_phase_ms: self
                .startup_import_us()
                .or(self.python.as_ref().map(|p| p.import_phase_us))
                .map(|us| us as f64 / 1e3),
            slowest_imports,
            duration_s,
            requests,
            throughput_rps: if duration_s > 0.0 {
                requests as f64 / duration_s
            } else {
                0.0
            },
            slowest_route: routes
                .iter()
                .find(|r| r.route != UNMATCHED_ROUTE && r.route != OTHER_ROUTE)
                .map(|r| format!("{} {}", r.method, r.route)),
            routes,
            routes_dropped: self.routes_dropped,
            loop_lag_max_ms: self.loop_lag_max_us.map(|us| us as f64 / 1e3),
            rss_start_bytes: self.first_sample.map(|s| s.rss_bytes),
            rss_end_bytes: self.last_sample.map(|s| s.rss_bytes),
            rss_peak_bytes: self.peak_rss_bytes,
            worker_restarts: self.workers.restarts(),
            wrapped_calls: self.invocations,
            rows_dropped: self.rows_dropped,
            imports,
        }
    }
}

/// The upper bound (seconds) of the catalogue HTTP bucket holding quantile
/// `q`, `None` without requests or when it falls in the overflow bucket.
fn bucket_quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil() as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return HTTP_DURATION_BUCKETS_SECONDS.get(i).copied();
        }
    }
    None
}

/// One route in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteSummary {
    /// Request method.
    pub method: String,
    /// Route template.
    pub route: String,
    /// Requests served.
    pub requests: u64,
    /// Responses with status 5xx (or none at all).
    pub server_errors: u64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// 99th percentile, ms, as the upper bound of its histogram bucket.
    pub p99_ms: Option<f64>,
    /// Slowest request, ms.
    pub max_ms: f64,
}

/// What `pyrometer run` prints and writes (`--json`) when the service exits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSummary {
    /// `cpython-3.12.1`, when the probe spoke.
    pub python: Option<String>,
    /// The web framework the probe hooked.
    pub framework: Option<String>,
    /// Process start to ready, ms.
    pub startup_ms: Option<f64>,
    /// What marked it ready: `request` (first request served) or `explicit`.
    pub ready_reason: Option<String>,
    /// Import time of start-up, ms: the slowest chain of a process's start-up
    /// imports and its ancestors' (a pre-fork or spawning server's master,
    /// then one worker: its imports after the fork are the application's),
    /// else the first `init` record's figure.
    pub import_phase_ms: Option<f64>,
    /// The ten slowest modules of start-up: (module, cumulative ms; the
    /// slowest import of a module several processes imported).
    pub slowest_imports: Vec<(String, f64)>,
    /// How long the service ran, seconds.
    pub duration_s: f64,
    /// HTTP requests served.
    pub requests: u64,
    /// Requests per second over the run.
    pub throughput_rps: f64,
    /// `METHOD /route` with the highest mean latency, among real routes (the
    /// labels of no single route, `<unmatched>` and `<other>`, are not endpoints).
    pub slowest_route: Option<String>,
    /// Every route, slowest (by mean) first.
    pub routes: Vec<RouteSummary>,
    /// Requests of routes beyond the summary's cap.
    pub routes_dropped: u64,
    /// Worst asyncio event-loop lag, ms.
    pub loop_lag_max_ms: Option<f64>,
    /// Tree RSS at the first sample, bytes.
    pub rss_start_bytes: Option<u64>,
    /// Tree RSS at the last sample, bytes.
    pub rss_end_bytes: Option<u64>,
    /// Highest tree RSS sampled, bytes.
    pub rss_peak_bytes: u64,
    /// Worker processes replaced.
    pub worker_restarts: u64,
    /// Calls of functions wrapped with `pyrometer_probe.wrap`.
    pub wrapped_calls: u64,
    /// Wrapped calls not passed to plugins because a window had too many.
    pub rows_dropped: u64,
    /// The start-up import profile.
    pub imports: Option<ImportProfile>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::Identity;
    use crate::sources::probe::HttpSeries;

    fn state() -> ServiceState {
        let identity = Identity {
            job: "pyrometer".into(),
            function_name: "svc".into(),
            function_version: "1".into(),
            instance: "i".into(),
        };
        ServiceState::new(Arc::new(MetricsRegistry::new(&identity)), 1_000_000)
    }

    fn bounds_us() -> Vec<u64> {
        HTTP_DURATION_BUCKETS_SECONDS
            .iter()
            .map(|s| (s * 1e6).round() as u64)
            .collect()
    }

    fn series(route: &str, status: u16, durations_us: &[u64]) -> HttpSeries {
        let bounds = bounds_us();
        let mut buckets = vec![0; bounds.len() + 1];
        for d in durations_us {
            let i = bounds.iter().position(|b| d <= b).unwrap_or(bounds.len());
            buckets[i] += 1;
        }
        HttpSeries {
            method: "GET".into(),
            route: route.into(),
            status,
            count: durations_us.len() as u64,
            sum_us: durations_us.iter().sum(),
            max_us: durations_us.iter().copied().max().unwrap_or(0),
            buckets,
        }
    }

    fn http(pid: u32, first: Option<u64>, series: Vec<HttpSeries>) -> ProbeMessage {
        ProbeMessage {
            pid,
            seq: 0,
            dropped: 0,
            record: ProbeRecord::Http(ProbeHttp {
                framework: "flask".into(),
                window_end_unix_us: 3_000_000,
                first_response_unix_us: first,
                in_flight: 1,
                loop_lag_max_us: Some(150_000),
                loop_pending_tasks: Some(2),
                bounds_us: bounds_us(),
                series,
            }),
        }
    }

    #[test]
    fn the_slowest_route_and_start_up_come_from_http_windows() {
        let mut s = state();
        s.on_probe(http(
            7,
            Some(1_400_000),
            vec![
                series("/fast", 200, &[1_000, 2_000]),
                series("/slow/<id>", 200, &[300_000]),
            ],
        ));
        s.on_probe(http(
            8,
            Some(1_300_000),
            vec![series("/fast", 500, &[4_000])],
        ));
        let summary = s.summary(2.0);
        assert_eq!(summary.slowest_route.as_deref(), Some("GET /slow/<id>"));
        assert_eq!(summary.requests, 4);
        assert_eq!(summary.throughput_rps, 2.0);
        assert_eq!(summary.startup_ms, Some(300.0));
        assert_eq!(summary.routes[1].server_errors, 1);
        assert_eq!(summary.routes[0].p99_ms, Some(500.0));
        assert_eq!(summary.loop_lag_max_ms, Some(150.0));
        let text = s.registry.render();
        assert!(
            text.contains(
                "http_server_active_requests{function_name=\"svc\",function_version=\"1\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("http_server_request_duration_seconds_count{function_name=\"svc\",function_version=\"1\",http_request_method=\"GET\",http_response_status_code=\"200\",http_route=\"/fast\"} 2"), "{text}");
        assert!(
            text.contains(
                "python_startup_duration_seconds{function_name=\"svc\",function_version=\"1\"} 0.3"
            ),
            "{text}"
        );
    }

    #[test]
    fn requests_of_no_single_route_are_not_the_slowest_endpoint() {
        let mut s = state();
        s.on_probe(http(
            7,
            None,
            vec![series(UNMATCHED_ROUTE, 404, &[900_000])],
        ));
        assert_eq!(s.summary(1.0).slowest_route, None, "no endpoint served yet");
        s.on_probe(http(
            7,
            None,
            vec![
                series(OTHER_ROUTE, 200, &[800_000]),
                series("/users/<id>", 200, &[2_000]),
            ],
        ));
        let summary = s.summary(1.0);
        assert_eq!(summary.slowest_route.as_deref(), Some("GET /users/<id>"));
        assert_eq!(
            summary.routes[0].route, UNMATCHED_ROUTE,
            "still listed, slowest first"
        );
    }

    #[test]
    fn windows_become_plugin_rows_with_start_up_once() {
        let mut s = state();
        let function = FunctionInfo::default();
        assert!(
            s.take_batch(&function, 2_000.0).is_none(),
            "nothing happened yet"
        );
        let sample = ProcessSample {
            rss_bytes: 10_000_000,
            cpu_user_ms: 5.0,
            ..ProcessSample::default()
        };
        s.on_sample(sample, &[]);
        s.on_probe(http(
            7,
            Some(1_500_000),
            vec![series("/a", 200, &[2_000, 4_000])],
        ));
        let batch = s.take_batch(&function, 3_000.0).expect("a window");
        assert_eq!(batch.invocations.len(), 1);
        let row = &batch.invocations[0];
        assert_eq!(row.duration_ms, 3.0);
        assert_eq!(row.init_duration_ms, Some(500.0));
        assert!(row.cold_start);
        assert_eq!(row.rss_bytes, Some(10_000_000.0));
        s.on_sample(sample, &[]);
        let idle = s.take_batch(&function, 4_000.0).expect("a sampled window");
        assert!(idle.invocations[0].duration_ms.is_nan());
        assert_eq!(idle.invocations[0].init_duration_ms, None);
        assert!(!idle.invocations[0].cold_start);
    }

    fn profile_message(pid: u32, modules: &[(&str, Option<usize>)]) -> ProbeMessage {
        use crate::model::ImportedModule;
        use crate::sources::probe::ProbeImports;
        ProbeMessage {
            pid,
            seq: 1,
            dropped: 0,
            record: ProbeRecord::Imports(ProbeImports {
                profile_id: 0,
                phase: ImportPhase::Init,
                invocation: 0,
                base_index: 0,
                profile: ImportProfile {
                    modules: modules
                        .iter()
                        .map(|(name, parent)| ImportedModule {
                            module: (*name).to_owned(),
                            parent: *parent,
                            cumulative_us: 1_000,
                            ..ImportedModule::default()
                        })
                        .collect(),
                },
            }),
        }
    }

    fn fork_message(pid: u32, parent_pid: u32) -> ProbeMessage {
        use crate::sources::probe::ProbeFork;
        ProbeMessage {
            pid,
            seq: 0,
            dropped: 0,
            record: ProbeRecord::Fork(ProbeFork {
                parent_pid,
                fork_unix_us: 1,
            }),
        }
    }

    #[test]
    fn one_worker_speaks_for_its_siblings_and_the_master_is_kept() {
        let mut s = state();
        s.on_probe(fork_message(11, 10));
        s.on_probe(profile_message(11, &[("app", None), ("flask", Some(0))]));
        s.on_probe(fork_message(12, 10));
        s.on_probe(profile_message(12, &[("app", None), ("flask", Some(0))]));
        s.on_probe(profile_message(
            10,
            &[("gunicorn", None), ("gunicorn.app", Some(0))],
        ));
        let merged = s.imports().expect("profiles");
        let names: Vec<&str> = merged.modules.iter().map(|m| m.module.as_str()).collect();
        assert_eq!(names, ["app", "flask", "gunicorn", "gunicorn.app"]);
        assert_eq!(
            merged.modules[3].parent,
            Some(2),
            "parents shift with their profile"
        );
        let function = FunctionInfo::default();
        let batch = s.take_batch(&function, 1.0).expect("imports make a batch");
        assert_eq!(batch.imports.map(|p| p.modules.len()), Some(4));
        assert!(s.take_batch(&function, 2.0).is_none(), "sent once");
        assert_eq!(
            s.summary(1.0).import_phase_ms,
            Some(2.0),
            "start-up imports: the worker's and the master's top-level ones"
        );
    }

    #[test]
    fn a_worker_ready_to_serve_starts_the_service_before_its_first_request() {
        use crate::sources::probe::ProbeReady;
        let mut s = state();
        s.on_probe(http(11, Some(1_900_000), vec![series("/", 200, &[1_000])]));
        assert_eq!(s.summary(1.0).ready_reason.as_deref(), Some("request"));
        s.on_probe(ProbeMessage {
            pid: 11,
            seq: 1,
            dropped: 0,
            record: ProbeRecord::Ready(ProbeReady {
                ready_unix_us: 1_250_000,
                reason: ReadyReason::Server,
            }),
        });
        let summary = s.summary(1.0);
        assert_eq!(summary.startup_ms, Some(250.0));
        assert_eq!(summary.ready_reason.as_deref(), Some("server"));
        // A time before the service started (garbage) changes nothing.
        s.on_probe(ProbeMessage {
            pid: 12,
            seq: 0,
            dropped: 0,
            record: ProbeRecord::Ready(ProbeReady {
                ready_unix_us: 999_999,
                reason: ReadyReason::Server,
            }),
        });
        assert_eq!(s.summary(1.0).startup_ms, Some(250.0));
    }

    #[test]
    fn spawned_workers_import_side_by_side_after_their_master() {
        let mut s = state();
        // uvicorn --workers 2: a supervisor (10) and two spawned workers
        // (no fork record; the tree samples tell their parent).
        s.on_sample(ProcessSample::default(), &[(10, 1), (11, 10), (12, 10)]);
        s.on_probe(profile_message(11, &[("app", None), ("fastapi", None)]));
        s.on_probe(profile_message(12, &[("app", None), ("fastapi", None)]));
        s.on_probe(profile_message(10, &[("uvicorn", None)]));
        let summary = s.summary(1.0);
        assert_eq!(
            summary.import_phase_ms,
            Some(3.0),
            "the supervisor's 1 ms, then one worker's 2 ms"
        );
        let names: Vec<&str> = summary
            .slowest_imports
            .iter()
            .map(|(m, _)| m.as_str())
            .collect();
        assert_eq!(names, ["app", "fastapi", "uvicorn"], "each module once");
        // A reused pid can make stale parents a cycle: each process counts once.
        s.on_sample(ProcessSample::default(), &[(10, 12)]);
        assert_eq!(s.summary(1.0).import_phase_ms, Some(5.0));
    }

    #[test]
    fn bucket_quantiles_use_upper_bounds() {
        let mut b = vec![0; HTTP_DURATION_BUCKETS_SECONDS.len() + 1];
        b[0] = 99;
        b[3] = 1;
        assert_eq!(bucket_quantile(&b, 0.99), Some(0.005));
        assert_eq!(bucket_quantile(&b, 1.0), Some(0.05));
        assert_eq!(bucket_quantile(&[0, 0], 0.5), None);
    }
}

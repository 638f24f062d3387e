//! Export benchmarks: render/encode time per exporter for a registry of about
//! 1 000 series, and flush latency to a loopback Pushgateway (p50/p99).
//!
//! `cargo bench -p pyrometer --bench export` (release). Every figure is also
//! given as a ratio to a baseline measured in the same run: the raw
//! `PrometheusHandle::render` of the same registry. The flush part needs
//! `prometheus-pushgateway` (`apt-get install -y prometheus-pushgateway`).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyrometer::export::pushgateway::gzip_body;
use pyrometer::export::{
    EmfConfig, EmfExporter, Exporter, Exporters, Identity, MetricsRegistry, PushgatewayConfig,
    PushgatewayExporter, RemoteWriteConfig, RemoteWriteExporter,
};
use pyrometer::model::{Invocation, MetricKind, PluginMetric, PluginOutput, Status};

const ITERATIONS: usize = 300;
const FLUSHES: usize = 500;

fn identity() -> Identity {
    Identity {
        job: "pyrometer".into(),
        function_name: "checkout".into(),
        function_version: "42".into(),
        instance: "2026/11/25/[$LATEST]0123456789abcdef".into(),
    }
}

/// About 1 000 series: every function histogram over 10 outcome label sets,
/// plus 40 plugin gauge families × 20 label values.
fn registry() -> Arc<MetricsRegistry> {
    let registry = Arc::new(MetricsRegistry::new(&identity()));
    let statuses = [
        Status::Success,
        Status::Error,
        Status::Timeout,
        Status::OutOfMemory,
        Status::Failure,
    ];
    for i in 0..2_000u32 {
        registry.record_invocation(&Invocation {
            cold_start: i % 2 == 0,
            status: statuses[(i % 5) as usize],
            duration_ms: f64::from(i % 900),
            billed_duration_ms: Some(f64::from(i % 900 + 1)),
            init_duration_ms: Some(300.0),
            max_memory_used_mb: Some(100.0 + f64::from(i % 50)),
            cpu_user_ms: Some(2.0),
            gc_collections: 1,
            gc_pause_ms: Some(0.5),
            ..Default::default()
        });
    }
    let metrics = (0..40)
        .flat_map(|family| {
            (0..20).map(move |label| PluginMetric {
                plugin: String::new(),
                name: format!("bench_plugin_family_{family}"),
                kind: MetricKind::Gauge,
                help: "A benchmark gauge.".into(),
                labels: vec![("route".into(), format!("/api/v{label}"))],
                value: f64::from(family * label),
            })
        })
        .collect();
    registry.record_plugin_output(
        "bench",
        &PluginOutput {
            metrics,
            findings: vec![],
        },
    );
    registry
}

/// Median and 99th percentile of `iterations` runs of `f`, each run
/// interleaved with a run of the baseline so that both see the same machine
/// load; returns (f's p50, f's p99, baseline's p50).
fn measure(
    iterations: usize,
    baseline: &dyn Fn(),
    mut f: impl FnMut(),
) -> (Duration, Duration, Duration) {
    for _ in 0..iterations / 10 {
        baseline();
        f();
    }
    let time = |g: &mut dyn FnMut()| {
        let started = Instant::now();
        g();
        started.elapsed()
    };
    let mut base = Vec::with_capacity(iterations);
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        base.push(time(&mut || baseline()));
        samples.push(time(&mut f));
    }
    base.sort();
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        base[base.len() / 2],
    )
}

fn row(name: &str, (p50, p99, baseline): (Duration, Duration, Duration), extra: &str) {
    println!(
        "{name:<44} p50 {:>9.1} µs  p99 {:>9.1} µs  {:>6.2}× baseline ({:.1} µs)  {extra}",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        p50.as_secs_f64() / baseline.as_secs_f64(),
        baseline.as_secs_f64() * 1e6,
    );
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_pushgateway() -> Option<(Gateway, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("prometheus-pushgateway")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--persistence.file=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let gateway = Gateway(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((gateway, url));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn main() {
    let registry = registry();
    let snapshot = registry.snapshot();
    let text = registry.render();
    println!(
        "registry: {} series in {} families, {} bytes of text; {ITERATIONS} iterations each",
        snapshot.series_count(),
        snapshot.families().len(),
        text.len()
    );

    // The baseline: the raw render of the recorder, without pyrometer's parts.
    let render_baseline = || {
        std::hint::black_box(registry.handle().render());
    };
    let baseline: &dyn Fn() = &render_baseline;
    row(
        "baseline: PrometheusHandle::render",
        measure(ITERATIONS, baseline, render_baseline),
        "",
    );
    row(
        "registry render (pull /metrics body)",
        measure(ITERATIONS, baseline, || {
            std::hint::black_box(registry.render());
        }),
        "",
    );
    row(
        "snapshot (render + parse, once per flush)",
        measure(ITERATIONS, baseline, || {
            std::hint::black_box(registry.snapshot().families().len());
        }),
        "",
    );
    let gzipped = gzip_body(text.as_bytes()).map(|b| b.len()).unwrap_or(0);
    row(
        "pushgateway encode (gzip of the text)",
        measure(ITERATIONS, baseline, || {
            std::hint::black_box(gzip_body(text.as_bytes()).ok());
        }),
        &format!("{gzipped} bytes"),
    );
    let remote_write = RemoteWriteExporter::new(
        &RemoteWriteConfig::new("http://127.0.0.1:9/api/v1/write"),
        &identity(),
    );
    if let Ok(remote_write) = remote_write {
        let size = remote_write
            .encode(&snapshot, snapshot.timestamp_ms)
            .map(|b| b.len())
            .unwrap_or(0);
        row(
            "remote write encode (protobuf + snappy)",
            measure(ITERATIONS, baseline, || {
                std::hint::black_box(remote_write.encode(&snapshot, snapshot.timestamp_ms).ok());
            }),
            &format!("{size} bytes"),
        );
    }
    // EMF writes deltas: a fresh exporter per run so every run writes everything.
    let far = Instant::now() + Duration::from_secs(60);
    let mut emf_bytes = 0;
    row(
        "emf encode (all documents, first flush)",
        measure(ITERATIONS, baseline, || {
            let mut emf = EmfExporter::new(EmfConfig::default(), Box::new(std::io::sink()));
            emf_bytes = emf.export(&snapshot, far).map(|s| s.bytes).unwrap_or(0);
        }),
        &format!("{emf_bytes} bytes"),
    );
    let mut emf = EmfExporter::new(EmfConfig::default(), Box::new(std::io::sink()));
    let _ = emf.export(&snapshot, far);
    row(
        "emf encode (steady state, nothing changed)",
        measure(ITERATIONS, baseline, || {
            std::hint::black_box(emf.export(&snapshot, far).ok());
        }),
        "",
    );

    match start_pushgateway() {
        None => println!(
            "flush latency: skipped, prometheus-pushgateway did not start (apt-get install -y prometheus-pushgateway)"
        ),
        Some((_gateway, url)) => {
            let exporter = PushgatewayExporter::new(&PushgatewayConfig::new(&url), &identity());
            let Ok(exporter) = exporter else { return };
            let mut exporters =
                Exporters::new(Arc::clone(&registry), Duration::from_secs(5)).with(exporter);
            let mut failures = 0;
            let latency = measure(FLUSHES, baseline, || {
                if !exporters.flush().all_succeeded() {
                    failures += 1;
                }
            });
            row(
                "flush to loopback Pushgateway (PUT, gzip)",
                latency,
                &format!("{FLUSHES} flushes, {failures} failed"),
            );
        }
    }
}

//! Plugin host benchmarks: load by compiling vs deserializing `.cwasm`, warm
//! call latency by batch size, and re-instantiation after a trap.
//!
//! Run with `cargo bench -p pyrometer-tests --bench plugins`. Each figure is
//! the median (and p99) of many runs, printed beside the baseline it is
//! compared with in the same run and the target from the plugin-runtime issue.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pyrometer::model::{Batch, FunctionInfo, Invocation};
use pyrometer::plugins::{PluginSet, PluginSpec, artifact, convert};
use pyrometer_tests::guest;

/// Median and 99th percentile of repeated timings.
struct Timing {
    median: Duration,
    p99: Duration,
}

fn measure(runs: usize, mut f: impl FnMut()) -> Timing {
    // Warm caches and lazily initialised state before timing.
    for _ in 0..runs.min(10) {
        f();
    }
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        p99: samples[(samples.len() * 99 / 100).min(samples.len() - 1)],
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn batch(n: usize) -> Batch {
    Batch {
        function: FunctionInfo {
            name: "bench".into(),
            ..FunctionInfo::default()
        },
        invocations: (0..n)
            .map(|i| Invocation {
                request_id: format!("8f5e1c2a-0000-4000-8000-{i:012}"),
                start_unix_ms: 1.7e12 + i as f64,
                duration_ms: 10.0 + (i % 17) as f64,
                rss_bytes: Some(5e7 + i as f64),
                ..Invocation::default()
            })
            .collect(),
        imports: None,
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("pyrometer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wasm = guest("latency-slo");
    let set = PluginSet::new().expect("engine");
    let cwasm = dir.join("plugin.cwasm");
    std::fs::write(
        &cwasm,
        artifact::precompile(set.engine(), &wasm).expect("precompile"),
    )
    .expect("write");

    println!("pyrometer plugin host benchmarks (median / p99)\n");
    let compile = measure(5, || {
        black_box(artifact::load_component(set.engine(), &wasm).expect("compile"));
    });
    let deserialize = measure(200, || {
        black_box(artifact::load_component(set.engine(), &cwasm).expect("deserialize"));
    });
    println!(
        "load latency-slo.wasm by compiling   {:>10.1} µs",
        us(compile.median)
    );
    println!(
        "load latency-slo.cwasm (deserialize) {:>10.1} µs   {:.0}x faster (target ≥ 100x)",
        us(deserialize.median),
        compile.median.as_secs_f64() / deserialize.median.as_secs_f64()
    );

    let mut set = PluginSet::new().expect("engine");
    set.add(&PluginSpec::new(guest("minimal")))
        .expect("load minimal");
    println!("\nwarm analyze call, minimal plugin (one gauge out: the host's own cost per call):");
    let mut one = Duration::ZERO;
    for (n, target_us) in [(1usize, 20.0), (100, f64::NAN), (10_000, 2000.0)] {
        let model = batch(n);
        let columns = convert::batch_to_wit(&model);
        let runs = if n >= 10_000 { 200 } else { 2000 };
        let t = measure(runs, || {
            black_box(set.run_one(0, &columns).expect("plugin").expect("call"));
        });
        let convert_t = measure(runs.min(200), || {
            black_box(convert::batch_to_wit(black_box(&model)));
        });
        if n == 1 {
            one = t.median;
        }
        let target = if target_us.is_nan() {
            String::new()
        } else {
            format!("(target ≤ {target_us} µs)")
        };
        println!(
            "  {n:>6} invocations {:>9.1} µs  p99 {:>9.1} µs  {:>6.1}x the 1-invocation call  {target}   [model→columns conversion, once per flush for all plugins: {:.1} µs]",
            us(t.median),
            us(t.p99),
            t.median.as_secs_f64() / one.as_secs_f64(),
            us(convert_t.median),
        );
    }

    let reinst = measure(500, || {
        set.reinstantiate_one(0)
            .expect("plugin")
            .expect("instantiate");
    });
    println!(
        "\nre-instantiate + configure after a trap {:>7.1} µs  p99 {:>7.1} µs  {:.1}x a warm 1-invocation call (target ≤ 50 µs)",
        us(reinst.median),
        us(reinst.p99),
        reinst.median.as_secs_f64() / one.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

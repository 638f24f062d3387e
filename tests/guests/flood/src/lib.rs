//! Test guest: returns a huge output. Config key `metrics` (default 1000000)
//! sets how many gauges `flood_gauge` (no labels, value = index) to return;
//! `findings` (default 0) how many `flood` findings (severity info).

use std::sync::atomic::{AtomicUsize, Ordering};

use pyrometer::plugin::types::{Finding, Metric, MetricKind, Severity};

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

static METRICS: AtomicUsize = AtomicUsize::new(1_000_000);
static FINDINGS: AtomicUsize = AtomicUsize::new(0);

struct Flood;

impl Guest for Flood {
    fn configure(config: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in config {
            let target = match key.as_str() {
                "metrics" => &METRICS,
                "findings" => &FINDINGS,
                _ => {
                    return Err(format!(
                        "unknown config key '{key}' (known keys: metrics, findings)"
                    ));
                }
            };
            let n = value
                .parse()
                .map_err(|_| format!("{key} must be a whole number, got '{value}'"))?;
            target.store(n, Ordering::Relaxed);
        }
        Ok(())
    }

    fn analyze(_batch: Batch) -> Result<Output, String> {
        let metrics = (0..METRICS.load(Ordering::Relaxed))
            .map(|i| Metric {
                name: "flood_gauge".into(),
                kind: MetricKind::Gauge,
                help: String::new(),
                labels: Vec::new(),
                value: i as f64,
            })
            .collect();
        let findings = (0..FINDINGS.load(Ordering::Relaxed))
            .map(|_| Finding {
                rule: "flood".into(),
                severity: Severity::Info,
                message: "flood".into(),
                labels: Vec::new(),
            })
            .collect();
        Ok(Output { metrics, findings })
    }
}

export!(Flood);

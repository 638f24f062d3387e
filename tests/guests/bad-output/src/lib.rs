//! Test guest: returns an invalid metric, chosen by config key `mode`:
//!
//! - `bad-name` (the default): a gauge named `9 bad name`;
//! - `kind-flip`: `x_total` as a counter on odd calls (1st, 3rd, …) and as a
//!   gauge on even calls, so the kind of a name changes between calls;
//! - `bad-label`: a gauge `bad_label_gauge` with a label named `bad-label!`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pyrometer::plugin::types::{Metric, MetricKind};

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

static MODE: Mutex<String> = Mutex::new(String::new());
static CALLS: AtomicU64 = AtomicU64::new(0);

struct BadOutput;

fn gauge(name: &str, labels: Vec<(String, String)>) -> Metric {
    Metric {
        name: name.into(),
        kind: MetricKind::Gauge,
        help: "An invalid metric, on purpose.".into(),
        labels,
        value: 1.0,
    }
}

impl Guest for BadOutput {
    fn configure(config: Vec<(String, String)>) -> Result<(), String> {
        let mut mode = "bad-name".to_owned();
        for (key, value) in config {
            match (key.as_str(), value.as_str()) {
                ("mode", "bad-name" | "kind-flip" | "bad-label") => mode = value,
                ("mode", _) => {
                    return Err(format!(
                        "mode must be bad-name, kind-flip or bad-label, got '{value}'"
                    ));
                }
                _ => return Err(format!("unknown config key '{key}' (known keys: mode)")),
            }
        }
        *MODE.lock().unwrap_or_else(|p| p.into_inner()) = mode;
        Ok(())
    }

    fn analyze(_batch: Batch) -> Result<Output, String> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let mode = MODE.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let metric = match mode.as_str() {
            "kind-flip" => {
                let mut metric = gauge("x_total", Vec::new());
                if calls % 2 == 1 {
                    metric.kind = MetricKind::Counter;
                }
                metric
            }
            "bad-label" => gauge(
                "bad_label_gauge",
                vec![("bad-label!".into(), "value".into())],
            ),
            _ => gauge("9 bad name", Vec::new()),
        };
        Ok(Output {
            metrics: vec![metric],
            findings: Vec::new(),
        })
    }
}

export!(BadOutput);

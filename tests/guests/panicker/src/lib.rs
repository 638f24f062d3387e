//! Test guest: `analyze` panics (a trap) when the batch's function is named
//! `panic`; otherwise it returns one gauge, `guest_instance_calls`, the number
//! of `analyze` calls this instance has served, this one included. After a
//! trap the host must re-instantiate, so the count starts again at 1.

use std::sync::atomic::{AtomicU64, Ordering};

use pyrometer::plugin::types::{Metric, MetricKind};

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

static CALLS: AtomicU64 = AtomicU64::new(0);

struct Panicker;

impl Guest for Panicker {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn analyze(batch: Batch) -> Result<Output, String> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        if batch.function.name == "panic" {
            panic!("panicker was asked to panic (call {calls} of this instance)");
        }
        Ok(Output {
            metrics: vec![Metric {
                name: "guest_instance_calls".into(),
                kind: MetricKind::Gauge,
                help: "analyze calls served by this plugin instance, this one included.".into(),
                labels: Vec::new(),
                value: calls as f64,
            }],
            findings: Vec::new(),
        })
    }
}

export!(Panicker);

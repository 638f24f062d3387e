//! Test guest: the cheapest plugin that still returns something, for
//! benchmarks of the host's own per-call cost. `analyze` reads only the number
//! of invocations and returns one gauge, `minimal_invocations`.

use pyrometer::plugin::types::{Metric, MetricKind};

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

struct Minimal;

impl Guest for Minimal {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn analyze(batch: Batch) -> Result<Output, String> {
        Ok(Output {
            metrics: vec![Metric {
                name: "minimal_invocations".into(),
                kind: MetricKind::Gauge,
                help: "Invocations in the batch.".into(),
                labels: Vec::new(),
                value: batch.invocations.request_id.len() as f64,
            }],
            findings: Vec::new(),
        })
    }
}

export!(Minimal);

//! CloudWatch EMF output checked against the format's rules.

mod export_support;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use export_support::{identity, registry};
use pyrometer::export::emf::{
    MAX_DIMENSIONS_PER_SET, MAX_METRICS_PER_DIRECTIVE, MAX_VALUES_PER_METRIC,
};
use pyrometer::export::{EmfConfig, EmfExporter, Exporters};
use pyrometer::model::{Invocation, MetricKind, PluginMetric, PluginOutput, Status};
use serde_json::Value;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn take_lines(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().expect("buffer"));
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is one JSON object"))
            .collect()
    }
}

/// Checks one document against the EMF specification and returns the
/// (metric name → number of values) it carries.
fn check_document(doc: &Value, namespace: &str) -> Vec<(String, usize)> {
    let root = doc.as_object().expect("a document is an object");
    let aws = root["_aws"].as_object().expect("_aws metadata");
    assert!(
        aws["Timestamp"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "Timestamp in ms"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty());
    let mut carried = Vec::new();
    for directive in directives {
        assert_eq!(directive["Namespace"], namespace);
        let dimension_sets = directive["Dimensions"].as_array().expect("Dimensions");
        for set in dimension_sets {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= MAX_DIMENSIONS_PER_SET);
            for dimension in set {
                let name = dimension.as_str().expect("dimension names are strings");
                assert!(
                    root[name].is_string(),
                    "dimension {name} has a string value in the root"
                );
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics");
        assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS_PER_DIRECTIVE);
        for metric in metrics {
            let name = metric["Name"].as_str().expect("Name");
            assert!(
                ["Seconds", "Bytes", "Count", "None"]
                    .contains(&metric["Unit"].as_str().unwrap_or(""))
            );
            assert!(metric["StorageResolution"] == 60 || metric["StorageResolution"] == 1);
            let values = match &root[name] {
                Value::Number(_) => 1,
                Value::Array(values) => {
                    assert!(values.iter().all(Value::is_number));
                    values.len()
                }
                other => panic!("metric {name} has no numeric value: {other}"),
            };
            assert!((1..=MAX_VALUES_PER_METRIC).contains(&values));
            carried.push((name.to_owned(), values));
        }
    }
    carried
}

#[test]
fn flushes_write_valid_emf_within_the_limits_and_deltas_add_up() {
    let id = identity("emf");
    let registry = registry(&id);
    let buffer = Buffer::default();
    let config = EmfConfig {
        namespace: "pyrometer-test".into(),
        ..EmfConfig::default()
    };
    let mut exporters = Exporters::new(Arc::clone(&registry), Duration::from_secs(1))
        .with(EmfExporter::new(config, Box::new(buffer.clone())));

    // 250 invocations: more than 100 histogram values in one flush.
    for i in 0..250 {
        registry.record_invocation(&Invocation {
            request_id: format!("request-{i}"),
            cold_start: i == 0,
            status: if i % 10 == 0 {
                Status::Error
            } else {
                Status::Success
            },
            duration_ms: f64::from(i),
            ..Default::default()
        });
    }
    // 150 plugin gauges under one label set: more than 100 metrics per directive.
    let metrics = (0..150)
        .map(|i| PluginMetric {
            plugin: String::new(),
            name: format!("plugin_gauge_{i}"),
            kind: MetricKind::Gauge,
            help: "A gauge.".into(),
            labels: vec![],
            value: f64::from(i),
        })
        .collect();
    registry.record_plugin_output(
        "wide",
        &PluginOutput {
            metrics,
            findings: vec![],
        },
    );
    assert!(exporters.flush().all_succeeded());

    let documents = buffer.take_lines();
    let text = documents.iter().map(Value::to_string).collect::<String>();
    assert!(!text.contains("request-"), "never a request id");
    let mut invoke_values = 0;
    let mut gauges = HashSet::new();
    let mut invocations_total = 0.0;
    for doc in &documents {
        for (name, values) in check_document(doc, "pyrometer-test") {
            if name == "faas_invoke_duration_seconds" {
                invoke_values += values;
            }
            if name.starts_with("plugin_gauge_") {
                gauges.insert(name.clone());
            }
            if name == "faas_invocations_total" {
                invocations_total += doc[&name].as_f64().unwrap_or_default();
            }
        }
        assert_eq!(doc["function_name"], "checkout");
        let dims = &doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
        assert_eq!(dims[0], "function_name");
        assert_eq!(dims[1], "function_version");
    }
    assert_eq!(invoke_values, 250, "one value per observation");
    assert_eq!(gauges.len(), 150);
    assert_eq!(invocations_total, 250.0);

    // The next flush carries only what changed: 5 more invocations.
    for _ in 0..5 {
        registry.record_invocation(&Invocation {
            duration_ms: 1.0,
            ..Default::default()
        });
    }
    assert!(exporters.flush().all_succeeded());
    let documents = buffer.take_lines();
    let mut invocations_total = 0.0;
    for doc in &documents {
        for (name, _) in check_document(doc, "pyrometer-test") {
            if name == "faas_invocations_total" {
                invocations_total += doc[&name].as_f64().unwrap_or_default();
            }
        }
    }
    assert_eq!(invocations_total, 5.0);
}

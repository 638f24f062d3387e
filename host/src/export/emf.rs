//! CloudWatch embedded metric format (EMF): JSON lines on stdout per flush.
//!
//! In Lambda, whatever an extension writes to stdout lands in the function's
//! log group, and CloudWatch Logs turns EMF lines into metrics with no API call
//! and no network on the invocation's path.
//!
//! Each flush writes, per distinct label set, documents of the form
//!
//! ```json
//! {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"pyrometer",
//!   "Dimensions":[["function_name","function_version","status"]],
//!   "Metrics":[{"Name":"faas_invocations_total","Unit":"Count","StorageResolution":60}]}]},
//!  "function_name":"checkout","function_version":"7","status":"success","faas_invocations_total":3}
//! ```
//!
//! CloudWatch sums what it receives, so values are **deltas since the last
//! flush**: counters as their increase, histograms as one value per new
//! observation, represented by its bucket's upper bound (the `+Inf` bucket by
//! the highest finite bound) — the registry keeps buckets, not raw
//! observations. Gauges are written as they are on every flush. Unchanged
//! counters and histograms are left out.
//!
//! The format's limits are kept by splitting: at most
//! [`MAX_METRICS_PER_DIRECTIVE`] metrics per directive, at most
//! [`MAX_VALUES_PER_METRIC`] values per array, at most
//! [`MAX_DIMENSIONS_PER_SET`] dimensions per set (further labels stay in the
//! document as plain properties). Labels that look like request ids are never
//! written, not even as properties.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::exposition::{FamilyKind, Sample};
use super::{ExportError, ExportStats, Exporter, Snapshot};

/// The format's cap on metrics in one directive.
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
/// The format's cap on values in one metric's array.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// CloudWatch's cap on dimensions in one dimension set.
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// Label names that are never written (request ids would make every
/// invocation its own metric).
pub const FORBIDDEN_LABELS: &[&str] = &[
    "request_id",
    "requestid",
    "aws_request_id",
    "request-id",
    "requestId",
];

/// EMF settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmfConfig {
    /// CloudWatch namespace (default `pyrometer`).
    pub namespace: String,
    /// Labels that always lead the dimension set, in this order (default
    /// `function_name`, `function_version`); a series' other labels follow.
    pub dimensions: Vec<String>,
    /// 60 (standard) or 1 (high resolution) (default 60).
    pub storage_resolution: u32,
}

impl Default for EmfConfig {
    fn default() -> Self {
        Self {
            namespace: "pyrometer".to_owned(),
            dimensions: vec!["function_name".to_owned(), "function_version".to_owned()],
            storage_resolution: 60,
        }
    }
}

/// A label set, sorted by name.
type LabelSet = Vec<(String, String)>;

/// One metric's contribution to a document.
#[derive(Debug)]
struct Entry {
    name: String,
    unit: &'static str,
    values: Vec<f64>,
}

/// Writes EMF documents, one JSON object per line.
pub struct EmfExporter {
    config: EmfConfig,
    writer: Box<dyn Write + Send>,
    /// Last seen cumulative values of counters and histogram buckets/counts.
    previous: HashMap<(String, LabelSet), f64>,
}

impl std::fmt::Debug for EmfExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmfExporter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EmfExporter {
    /// An exporter writing to stdout.
    pub fn stdout(config: EmfConfig) -> Self {
        Self::new(config, Box::new(std::io::stdout()))
    }

    /// An exporter writing to `writer`.
    pub fn new(config: EmfConfig, writer: Box<dyn Write + Send>) -> Self {
        Self {
            config,
            writer,
            previous: HashMap::new(),
        }
    }

    /// The documents for `snapshot`, updating the remembered totals.
    pub fn documents(&mut self, snapshot: &Snapshot) -> Vec<Value> {
        let mut groups: BTreeMap<LabelSet, Vec<Entry>> = BTreeMap::new();
        for family in snapshot.families() {
            match family.kind {
                FamilyKind::Counter => {
                    for sample in &family.samples {
                        let labels = label_set(sample, &[]);
                        let delta = self.delta(&sample.name, &labels, sample.value);
                        if delta > 0.0 {
                            groups.entry(labels).or_default().push(Entry {
                                name: sample.name.clone(),
                                unit: "Count",
                                values: vec![delta],
                            });
                        }
                    }
                }
                FamilyKind::Gauge | FamilyKind::Untyped => {
                    for sample in family.samples.iter().filter(|s| s.value.is_finite()) {
                        groups
                            .entry(label_set(sample, &[]))
                            .or_default()
                            .push(Entry {
                                name: sample.name.clone(),
                                unit: unit_of(&family.name),
                                values: vec![sample.value],
                            });
                    }
                }
                FamilyKind::Histogram => {
                    self.histogram(family.name.as_str(), &family.samples, &mut groups)
                }
                // The registry renders no summaries; their quantiles cannot be summed.
                FamilyKind::Summary => {}
            }
        }
        let mut documents = Vec::new();
        for (labels, entries) in groups {
            self.documents_for(snapshot.timestamp_ms, &labels, entries, &mut documents);
        }
        documents
    }

    fn delta(&mut self, name: &str, labels: &LabelSet, value: f64) -> f64 {
        let previous = self
            .previous
            .insert((name.to_owned(), labels.clone()), value);
        match previous {
            // A total that went down was reset: all of it is new.
            Some(previous) if previous <= value => value - previous,
            _ => value,
        }
    }

    fn histogram(
        &mut self,
        family: &str,
        samples: &[Sample],
        groups: &mut BTreeMap<LabelSet, Vec<Entry>>,
    ) {
        let bucket_name = format!("{family}_bucket");
        // Per label set: (upper bound, cumulative count) in order.
        let mut buckets: BTreeMap<LabelSet, Vec<(f64, f64)>> = BTreeMap::new();
        for sample in samples.iter().filter(|s| s.name == bucket_name) {
            let Some(le) = sample.label("le").and_then(super::exposition::parse_value) else {
                continue;
            };
            buckets
                .entry(label_set(sample, &["le"]))
                .or_default()
                .push((le, sample.value));
        }
        for (labels, mut bounds) in buckets {
            bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
            let highest_finite = bounds
                .iter()
                .rev()
                .map(|b| b.0)
                .find(|b| b.is_finite())
                .unwrap_or(0.0);
            let mut values = Vec::new();
            let mut below = 0.0;
            for (le, cumulative) in bounds {
                let in_bucket_now = cumulative - below;
                below = cumulative;
                let key_labels = {
                    let mut l = labels.clone();
                    l.push(("le".to_owned(), le.to_string()));
                    l
                };
                let new = self.delta(&bucket_name, &key_labels, in_bucket_now).round();
                let representative = if le.is_finite() { le } else { highest_finite };
                // Bounded by the observations since the last flush.
                values.extend(std::iter::repeat_n(representative, new as usize));
            }
            if !values.is_empty() {
                groups.entry(labels).or_default().push(Entry {
                    name: family.to_owned(),
                    unit: unit_of(family),
                    values,
                });
            }
        }
    }

    fn documents_for(
        &self,
        timestamp_ms: i64,
        labels: &LabelSet,
        entries: Vec<Entry>,
        out: &mut Vec<Value>,
    ) {
        // Dimensions: the configured ones first, then the series' own labels.
        let mut dimensions: Vec<&str> = Vec::new();
        for wanted in &self.config.dimensions {
            if labels.iter().any(|(k, v)| k == wanted && !v.is_empty()) {
                dimensions.push(wanted);
            }
        }
        for (name, value) in labels {
            if !value.is_empty() && !dimensions.contains(&name.as_str()) {
                dimensions.push(name);
            }
        }
        dimensions.truncate(MAX_DIMENSIONS_PER_SET);

        // Split values over documents: document i carries chunk i of every
        // metric that has one, and at most 100 metrics.
        let mut pending: Vec<(usize, &Entry)> = entries.iter().map(|e| (0, e)).collect();
        while !pending.is_empty() {
            let mut batch: Vec<(&Entry, &[f64])> = Vec::new();
            let mut rest = Vec::new();
            for (offset, entry) in pending {
                if batch.len() == MAX_METRICS_PER_DIRECTIVE {
                    rest.push((offset, entry));
                    continue;
                }
                let end = (offset + MAX_VALUES_PER_METRIC).min(entry.values.len());
                batch.push((entry, &entry.values[offset..end]));
                if end < entry.values.len() {
                    rest.push((end, entry));
                }
            }
            out.push(self.document(timestamp_ms, labels, &dimensions, &batch));
            pending = rest;
        }
    }

    fn document(
        &self,
        timestamp_ms: i64,
        labels: &LabelSet,
        dimensions: &[&str],
        batch: &[(&Entry, &[f64])],
    ) -> Value {
        let metrics: Vec<Value> = batch
            .iter()
            .map(|(entry, _)| {
                json!({"Name": entry.name, "Unit": entry.unit, "StorageResolution": self.config.storage_resolution})
            })
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.config.namespace,
                    "Dimensions": [dimensions],
                    "Metrics": metrics,
                }],
            }),
        );
        for (name, value) in labels {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (entry, values) in batch {
            let value = match values {
                [single] => json!(single),
                many => json!(many),
            };
            root.insert(entry.name.clone(), value);
        }
        Value::Object(root)
    }
}

impl Exporter for EmfExporter {
    fn name(&self) -> &'static str {
        "emf"
    }

    fn export(
        &mut self,
        snapshot: &Snapshot,
        _deadline: Instant,
    ) -> Result<ExportStats, ExportError> {
        let documents = self.documents(snapshot);
        let mut buffer = Vec::with_capacity(documents.len() * 512);
        for document in &documents {
            serde_json::to_writer(&mut buffer, document).map_err(std::io::Error::other)?;
            buffer.push(b'\n');
        }
        // One write per flush keeps lines whole next to other writers.
        self.writer.write_all(&buffer)?;
        self.writer.flush()?;
        Ok(ExportStats {
            series: documents.len(),
            bytes: buffer.len(),
            retries: 0,
        })
    }
}

/// The sample's labels minus `skip` and forbidden names, sorted.
fn label_set(sample: &Sample, skip: &[&str]) -> LabelSet {
    let mut labels: LabelSet = sample
        .labels
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()) && !is_forbidden(k))
        .cloned()
        .collect();
    labels.sort();
    labels
}

fn is_forbidden(label: &str) -> bool {
    FORBIDDEN_LABELS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(label))
}

/// CloudWatch's unit for a metric, from the name's unit suffix.
fn unit_of(name: &str) -> &'static str {
    let base = name.strip_suffix("_total").unwrap_or(name);
    if base.ends_with("_seconds") {
        "Seconds"
    } else if base.ends_with("_bytes") {
        "Bytes"
    } else if name.ends_with("_total") {
        "Count"
    } else {
        "None"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(text: &str) -> Snapshot {
        Snapshot::new(text.to_owned())
    }

    fn exporter() -> EmfExporter {
        EmfExporter::new(EmfConfig::default(), Box::new(std::io::sink()))
    }

    #[test]
    fn counters_are_deltas_and_unchanged_ones_are_left_out() {
        let mut emf = exporter();
        let text = |n| {
            format!(
                "# TYPE c_total counter\nc_total{{function_name=\"f\",function_version=\"1\",request_id=\"r\"}} {n}\n"
            )
        };
        let first = emf.documents(&snapshot(&text(5)));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0]["c_total"], json!(5.0));
        assert_eq!(
            first[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function_name", "function_version"]])
        );
        assert!(first[0].get("request_id").is_none());
        assert!(emf.documents(&snapshot(&text(5))).is_empty());
        assert_eq!(emf.documents(&snapshot(&text(8)))[0]["c_total"], json!(3.0));
    }

    #[test]
    fn histograms_become_bucket_values() {
        let mut emf = exporter();
        let text = "# TYPE h_seconds histogram\nh_seconds_bucket{le=\"0.1\"} 2\nh_seconds_bucket{le=\"1\"} 3\n\
                    h_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 3.2\nh_seconds_count 4\n";
        let docs = emf.documents(&snapshot(text));
        assert_eq!(docs[0]["h_seconds"], json!([0.1, 0.1, 1.0, 1.0]));
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            json!("Seconds")
        );
    }

    #[test]
    fn limits_split_documents() {
        let mut emf = exporter();
        let mut text = String::new();
        for i in 0..250 {
            text.push_str(&format!(
                "# TYPE g{i} gauge\ng{i}{{function_name=\"f\"}} {i}\n"
            ));
        }
        text.push_str("# TYPE h histogram\nh_bucket{function_name=\"f\",le=\"1\"} 250\nh_bucket{function_name=\"f\",le=\"+Inf\"} 250\n");
        let docs = emf.documents(&snapshot(&text));
        for doc in &docs {
            let metrics = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map_or(0, Vec::len);
            assert!(metrics <= MAX_METRICS_PER_DIRECTIVE);
            if let Some(values) = doc.get("h").and_then(Value::as_array) {
                assert!(values.len() <= MAX_VALUES_PER_METRIC);
            }
        }
        let total_h: usize = docs
            .iter()
            .filter_map(|d| d.get("h"))
            .map(|h| h.as_array().map_or(1, Vec::len))
            .sum();
        assert_eq!(total_h, 250);
        let gauges: usize = docs
            .iter()
            .map(|d| {
                d.as_object()
                    .map_or(0, |o| o.keys().filter(|k| k.starts_with('g')).count())
            })
            .sum();
        assert_eq!(gauges, 250);
    }
}

//! Reports of a `pyrometer lambda` run: the data ([`LambdaReport`], also the
//! stable `--json` schema) and its renderings — the terminal view, a
//! self-contained HTML page, and speedscope / folded stacks of the import tree.
//!
//! The report is built once from what the collector and the plugins produced;
//! every renderer reads only the report, so the JSON holds everything any view
//! shows. One file per concern:
//!
//! - [`summary`]: the headline figures ([`summarize`], [`Distribution::of`]);
//! - [`terminal`]: the view printed when a run ends ([`write_terminal`]);
//! - [`html`]: the self-contained page of `--html` ([`html_page`]);
//! - [`speedscope`]: the import tree for existing profile viewers
//!   ([`speedscope_json`], [`folded_stacks`]);
//! - `import_tree`: the children lists of an import profile the views walk;
//! - `SCHEMA.md`: every field of the `--json` output, documented.

#[cfg(test)]
mod fixture;
pub mod html;
mod import_tree;
pub mod service;
pub mod speedscope;
pub mod summary;
pub mod terminal;

pub use html::html_page;
pub use speedscope::{folded_stacks, speedscope_json};
pub use summary::summarize;
pub use terminal::{TerminalOptions, write_terminal};

use serde::{Deserialize, Serialize};

use crate::model::{Finding, FunctionInfo, InitReport, Invocation};

/// The schema identifier written into every JSON report. Bumped on any
/// incompatible change; additive changes keep it.
pub const SCHEMA: &str = "pyrometer.lambda-report/1";

/// Everything one `pyrometer lambda` run measured and concluded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LambdaReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The function as the emulator presented it.
    pub function: FunctionInfo,
    /// The handler as given (`app.py:handler` or `app.handler`).
    pub handler: String,
    /// The runtime client: `builtin` or `awslambdaric`.
    pub runtime_client: String,
    /// One entry per execution environment (`--cold N` gives N), in order.
    pub environments: Vec<EnvironmentRun>,
    /// Findings of every plugin over the whole run.
    pub findings: Vec<Finding>,
    /// One line per failed plugin call (the plugin's name, kind and message).
    pub plugin_failures: Vec<String>,
    /// Figures over all environments.
    pub summary: Summary,
}

impl LambdaReport {
    /// Completes a report: sets `schema` to [`SCHEMA`] and computes `summary`
    /// from the environments (see [`summarize`]).
    pub fn summarized(mut self) -> Self {
        self.schema = SCHEMA.to_owned();
        self.summary = summarize(&self.environments);
        self
    }
}

/// One execution environment: its cold start and the invocations it served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvironmentRun {
    /// The cold start.
    pub init: InitReport,
    /// The invocations, in order; the first is the cold one.
    pub invocations: Vec<Invocation>,
}

/// Distribution of a set of durations, milliseconds (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Distribution {
    /// How many values.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Headline figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Summary {
    /// Invocations in all environments.
    pub invocations: usize,
    /// Invocations whose status was not `success`.
    pub errors: usize,
    /// Init durations of the environments.
    pub init_ms: Distribution,
    /// Durations of cold invocations (the first of each environment).
    pub cold_invocation_ms: Distribution,
    /// Durations of warm invocations.
    pub warm_invocation_ms: Distribution,
    /// Largest RSS seen at the end of an invocation, bytes.
    pub max_rss_bytes: Option<f64>,
    /// Garbage collections over all invocations.
    pub gc_collections: u64,
    /// Their total pause, milliseconds.
    pub gc_pause_ms: f64,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::report::fixture::realistic_report;

    /// The schema documentation, checked against what is serialized.
    const SCHEMA_DOC: &str = include_str!("SCHEMA.md");

    #[test]
    fn a_realistic_report_round_trips_through_json() {
        let report = realistic_report();
        let json = serde_json::to_string_pretty(&report).expect("serialize");
        let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(value["schema"], "pyrometer.lambda-report/1");
        assert_eq!(value["schema"], SCHEMA);
        let back: LambdaReport = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, report);
    }

    #[test]
    fn summarized_sets_the_schema_and_the_summary() {
        let report = realistic_report();
        assert_eq!(report.schema, SCHEMA);
        assert_eq!(report.summary, summarize(&report.environments));
        assert_eq!(report.summary.invocations, 20);
    }

    #[test]
    fn unknown_fields_are_rejected_and_missing_ones_default() {
        let err = serde_json::from_str::<LambdaReport>(r#"{"schema": "x", "surprise": 1}"#);
        assert!(err.is_err());
        let minimal: LambdaReport = serde_json::from_str("{}").expect("all fields default");
        assert_eq!(minimal, LambdaReport::default());
    }

    /// Every key the JSON form of a realistic report has is documented in
    /// SCHEMA.md, so the documentation cannot silently fall behind.
    #[test]
    fn every_serialized_field_is_documented() {
        fn keys(value: &serde_json::Value, out: &mut BTreeSet<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        out.insert(key.clone());
                        keys(value, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let value = serde_json::to_value(realistic_report()).expect("serialize");
        let mut all = BTreeSet::new();
        keys(&value, &mut all);
        assert!(
            all.len() > 80,
            "the fixture exercises the whole schema: {all:?}"
        );
        let missing: Vec<&String> = all
            .iter()
            .filter(|key| !SCHEMA_DOC.contains(&format!("| `{key}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "fields missing from SCHEMA.md: {missing:?}"
        );
    }
}

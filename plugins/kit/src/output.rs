//! What a plugin returns: metrics and findings, a mirror of the WIT `output`.
//!
//! Builders keep plugin code short and make it hard to forget the HELP text:
//!
//! ```
//! use pyrometer_plugin_kit::{Finding, Metric, Severity};
//!
//! let metric = Metric::gauge("pyrometer_x_seconds", "How long x took.", 0.25)
//!     .label("function_name", "orders");
//! let finding = Finding::new("slow-x", Severity::Warning, "x took 250 ms.")
//!     .label("function_name", "orders");
//! assert_eq!(metric.labels, vec![("function_name".to_owned(), "orders".to_owned())]);
//! assert_eq!(finding.rule, "slow-x");
//! ```

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention.
    Warning,
    /// Breaks a budget or objective.
    Critical,
}

impl Severity {
    /// The WIT / JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// How a metric's value is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A value to add to a monotonically increasing total.
    Counter,
    /// A value that replaces the previous one.
    Gauge,
    /// One observation for a histogram.
    Histogram,
}

/// One metric sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// A valid Prometheus metric name.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The HELP text.
    pub help: String,
    /// Label pairs.
    pub labels: Vec<(String, String)>,
    /// The increment, value or observation.
    pub value: f64,
}

impl Metric {
    /// A gauge sample.
    pub fn gauge(name: &str, help: &str, value: f64) -> Self {
        Self {
            name: name.to_owned(),
            kind: MetricKind::Gauge,
            help: help.to_owned(),
            labels: Vec::new(),
            value,
        }
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, name: &str, value: impl Into<String>) -> Self {
        self.labels.push((name.to_owned(), value.into()));
        self
    }

    /// The value of label `name`, if set.
    pub fn label_value(&self, name: &str) -> Option<&str> {
        find_label(&self.labels, name)
    }
}

/// A conclusion drawn from a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Stable rule identifier (`slow-import`).
    pub rule: String,
    /// How urgent it is.
    pub severity: Severity,
    /// One sentence for a human.
    pub message: String,
    /// Bounded-cardinality labels.
    pub labels: Vec<(String, String)>,
}

impl Finding {
    /// A finding without labels.
    pub fn new(rule: &str, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            rule: rule.to_owned(),
            severity,
            message: message.into(),
            labels: Vec::new(),
        }
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, name: &str, value: impl Into<String>) -> Self {
        self.labels.push((name.to_owned(), value.into()));
        self
    }

    /// The value of label `name`, if set.
    pub fn label_value(&self, name: &str) -> Option<&str> {
        find_label(&self.labels, name)
    }
}

/// Everything a plugin returns for one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Metrics to export.
    pub metrics: Vec<Metric>,
    /// Findings to report.
    pub findings: Vec<Finding>,
}

fn find_label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

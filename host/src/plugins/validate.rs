//! Checks a plugin's output before anything of it is exported: size caps,
//! valid Prometheus names, finite values, and a stable kind per metric name.
//!
//! Output that fails any check is rejected whole — a half-exported output
//! would be harder to reason about than none.

use std::collections::HashMap;

use super::bindings::pyrometer::plugin::types as wit;
use super::convert::{finding_from_wit, metric_from_wit};
use super::limits::PluginLimits;
use crate::model::{MetricKind, PluginOutput};

/// Most label pairs on one metric or finding.
pub const MAX_LABELS: usize = 16;

/// The kind each metric name was first seen with. Shared by all plugins of a
/// set, since they export into one registry.
#[derive(Debug, Default)]
pub struct MetricKinds {
    kinds: HashMap<String, MetricKind>,
}

/// Validates and converts `output`, or explains in one line why it is invalid.
/// Kinds are only recorded when the whole output is valid.
pub fn validate_output(
    plugin: &str,
    output: wit::Output,
    limits: &PluginLimits,
    kinds: &mut MetricKinds,
) -> Result<PluginOutput, String> {
    if output.metrics.len() > limits.max_metrics {
        return Err(format!(
            "{} metrics exceed the cap of {}",
            output.metrics.len(),
            limits.max_metrics
        ));
    }
    if output.findings.len() > limits.max_findings {
        return Err(format!(
            "{} findings exceed the cap of {}",
            output.findings.len(),
            limits.max_findings
        ));
    }
    let bytes = output_bytes(&output);
    if bytes > limits.max_output_bytes {
        return Err(format!(
            "{bytes} bytes of output exceed the cap of {}",
            limits.max_output_bytes
        ));
    }
    let metrics: Vec<_> = output
        .metrics
        .into_iter()
        .map(|m| metric_from_wit(plugin, m))
        .collect();
    let mut new_kinds = Vec::new();
    for m in &metrics {
        check_metric_name(&m.name)?;
        check_labels(&m.name, &m.labels)?;
        if !m.value.is_finite() {
            return Err(format!(
                "metric {} has a non-finite value {}",
                m.name, m.value
            ));
        }
        if m.kind == MetricKind::Counter && m.value < 0.0 {
            return Err(format!(
                "counter {} has a negative increment {}",
                m.name, m.value
            ));
        }
        let known = kinds
            .kinds
            .get(&m.name)
            .or_else(|| new_kinds.iter().find(|(n, _)| n == &m.name).map(|(_, k)| k));
        match known {
            Some(k) if *k != m.kind => {
                return Err(format!(
                    "metric {} changed kind from {k:?} to {:?}",
                    m.name, m.kind
                ));
            }
            Some(_) => {}
            None => new_kinds.push((m.name.clone(), m.kind)),
        }
    }
    for f in &output.findings {
        if f.rule.is_empty() {
            return Err("a finding has an empty rule".into());
        }
        check_labels(&f.rule, &f.labels)?;
    }
    kinds.kinds.extend(new_kinds);
    Ok(PluginOutput {
        metrics,
        findings: output
            .findings
            .into_iter()
            .map(|f| finding_from_wit(plugin, f))
            .collect(),
    })
}

fn output_bytes(o: &wit::Output) -> usize {
    let labels = |l: &[(String, String)]| l.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let m: usize = o
        .metrics
        .iter()
        .map(|m| m.name.len() + m.help.len() + labels(&m.labels))
        .sum();
    let f: usize = o
        .findings
        .iter()
        .map(|f| f.rule.len() + f.message.len() + labels(&f.labels))
        .sum();
    m + f
}

/// Prometheus metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved (`__`).
fn check_labels(owner: &str, labels: &[(String, String)]) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "{owner} has {} labels, over {MAX_LABELS}",
            labels.len()
        ));
    }
    for (name, _) in labels {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with("__");
        if !valid {
            return Err(format!("{owner} has an invalid label name {name:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, kind: wit::MetricKind, value: f64) -> wit::Metric {
        wit::Metric {
            name: name.into(),
            kind,
            help: String::new(),
            labels: vec![],
            value,
        }
    }

    fn output(metrics: Vec<wit::Metric>) -> wit::Output {
        wit::Output {
            metrics,
            findings: vec![],
        }
    }

    fn check(o: wit::Output, kinds: &mut MetricKinds) -> Result<PluginOutput, String> {
        validate_output("p", o, &PluginLimits::default(), kinds)
    }

    #[test]
    fn accepts_valid_and_rejects_bad_names() {
        let mut k = MetricKinds::default();
        assert!(
            check(
                output(vec![metric("a_b:c", wit::MetricKind::Gauge, 1.0)]),
                &mut k
            )
            .is_ok()
        );
        for bad in ["", "9x", "a-b", "a b"] {
            assert!(
                check(
                    output(vec![metric(bad, wit::MetricKind::Gauge, 1.0)]),
                    &mut k
                )
                .is_err()
            );
        }
    }

    #[test]
    fn kind_may_not_change_across_or_within_calls() {
        let mut k = MetricKinds::default();
        assert!(
            check(
                output(vec![metric("x", wit::MetricKind::Counter, 1.0)]),
                &mut k
            )
            .is_ok()
        );
        let err = check(
            output(vec![metric("x", wit::MetricKind::Gauge, 1.0)]),
            &mut k,
        );
        assert!(err.is_err_and(|e| e.contains("changed kind")));
        let within = output(vec![
            metric("y", wit::MetricKind::Gauge, 1.0),
            metric("y", wit::MetricKind::Histogram, 1.0),
        ]);
        assert!(check(within, &mut k).is_err());
        // The rejected output recorded nothing: y is still free.
        assert!(
            check(
                output(vec![metric("y", wit::MetricKind::Histogram, 1.0)]),
                &mut k
            )
            .is_ok()
        );
    }

    #[test]
    fn rejects_non_finite_negative_counters_and_bad_labels() {
        let mut k = MetricKinds::default();
        assert!(
            check(
                output(vec![metric("n", wit::MetricKind::Gauge, f64::NAN)]),
                &mut k
            )
            .is_err()
        );
        assert!(
            check(
                output(vec![metric("c", wit::MetricKind::Counter, -1.0)]),
                &mut k
            )
            .is_err()
        );
        let mut m = metric("l", wit::MetricKind::Gauge, 1.0);
        m.labels = vec![("__name".into(), "v".into())];
        assert!(check(output(vec![m]), &mut k).is_err());
    }

    #[test]
    fn enforces_count_and_byte_caps() {
        let mut k = MetricKinds::default();
        let limits = PluginLimits {
            max_metrics: 2,
            max_output_bytes: 10,
            ..PluginLimits::default()
        };
        let three = output(vec![metric("a", wit::MetricKind::Gauge, 1.0); 3]);
        assert!(
            validate_output("p", three, &limits, &mut k).is_err_and(|e| e.contains("cap of 2"))
        );
        let long = output(vec![metric(
            "a_very_long_name",
            wit::MetricKind::Gauge,
            1.0,
        )]);
        assert!(validate_output("p", long, &limits, &mut k).is_err_and(|e| e.contains("bytes")));
    }
}

//! Prometheus naming rules and label helpers.
//!
//! The host validates every metric a plugin returns and rejects the invalid
//! ones; first-party plugins check their names in tests with the same rules, and
//! pass unbounded or odd label values (module names, function names) through
//! [`label_value`] so that one pathological value cannot blow up a series.

/// The longest label value a first-party plugin emits, in bytes. Module and
/// function names are far shorter; this only stops a pathological one.
pub const MAX_LABEL_VALUE_BYTES: usize = 128;

/// Whether `name` is a valid Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`,
/// and not reserved with a leading `__`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// `value` cut to at most [`MAX_LABEL_VALUE_BYTES`] bytes on a character
/// boundary.
pub fn label_value(value: &str) -> String {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return value.to_owned();
    }
    let mut end = MAX_LABEL_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// A quantile as the `quantile` label spells it (`0.5`, `0.95`, `0.99`).
pub fn quantile_label(q: f64) -> String {
    format!("{q}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for good in ["a", "_a", "a:b_c9", "pyrometer_slow_imports_self_seconds"] {
            assert!(is_valid_metric_name(good), "{good}");
        }
        for bad in ["", "9a", "a-b", "a b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        for good in ["a", "_a", "function_name", "quantile"] {
            assert!(is_valid_label_name(good), "{good}");
        }
        for bad in ["", "9a", "a:b", "bad-label!", "__name__"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_values_are_bounded_on_char_boundaries() {
        assert_eq!(label_value("boto3"), "boto3");
        let long = "é".repeat(100); // 200 bytes
        let cut = label_value(&long);
        assert!(cut.len() <= MAX_LABEL_VALUE_BYTES);
        assert_eq!(cut, "é".repeat(64));
        assert_eq!(quantile_label(0.5), "0.5");
        assert_eq!(quantile_label(0.99), "0.99");
    }
}

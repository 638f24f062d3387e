//! Typed knobs from a plugin's key/value configuration.
//!
//! The host hands `configure` a `list<tuple<string, string>>`. A plugin wraps it
//! in a [`Config`], asks for each knob with its type, default and bounds, and
//! finally calls [`Config::finish`], which rejects every key nobody asked for: a
//! misspelt knob must fail loudly at configure time, not silently fall back to
//! its default. Every error names the key and quotes the bad value, because the
//! message is shown to the user as is.

use std::fmt;

/// A configuration problem, shown to the user by the host.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The same key appeared twice.
    Duplicate {
        /// The repeated key.
        key: String,
    },
    /// A value did not parse, or is out of bounds.
    Invalid {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// What was expected, as a phrase (`a number greater than 0`).
        expected: String,
    },
    /// Two knobs contradict each other.
    Conflict {
        /// One sentence saying which knobs and why.
        message: String,
    },
    /// A key no knob of this plugin reads.
    Unknown {
        /// The unknown key.
        key: String,
        /// The keys this plugin understands.
        known: Vec<String>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate { key } => write!(f, "config key '{key}' is given more than once"),
            Self::Invalid {
                key,
                value,
                expected,
            } => write!(f, "{key} must be {expected}, got '{value}'"),
            Self::Conflict { message } => f.write_str(message),
            Self::Unknown { key, known } => write!(
                f,
                "unknown config key '{key}' (known keys: {})",
                known.join(", ")
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The admissible range of a numeric knob.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    min: f64,
    min_inclusive: bool,
    max: f64,
    max_inclusive: bool,
}

impl Bounds {
    /// Strictly greater than zero.
    pub const fn positive() -> Self {
        Self::new(0.0, false, f64::INFINITY, false)
    }

    /// Zero or more.
    pub const fn non_negative() -> Self {
        Self::new(0.0, true, f64::INFINITY, false)
    }

    /// At least `min`.
    pub const fn at_least(min: f64) -> Self {
        Self::new(min, true, f64::INFINITY, false)
    }

    /// Strictly between 0 and 1, as a target fraction must be (0.99).
    pub const fn open_unit() -> Self {
        Self::new(0.0, false, 1.0, false)
    }

    /// Greater than 0 and at most 1, as a share threshold must be (0.5).
    pub const fn fraction() -> Self {
        Self::new(0.0, false, 1.0, true)
    }

    /// From `min` to `max`, both included.
    pub const fn between(min: f64, max: f64) -> Self {
        Self::new(min, true, max, true)
    }

    const fn new(min: f64, min_inclusive: bool, max: f64, max_inclusive: bool) -> Self {
        Self {
            min,
            min_inclusive,
            max,
            max_inclusive,
        }
    }

    /// Whether `value` lies within the bounds.
    pub fn contains(&self, value: f64) -> bool {
        let above = if self.min_inclusive {
            value >= self.min
        } else {
            value > self.min
        };
        let below = if self.max_inclusive {
            value <= self.max
        } else {
            value < self.max
        };
        above && below
    }

    /// The bounds as a phrase, after "a number" or "an integer".
    fn describe(&self) -> String {
        let low = match (self.min_inclusive, self.min) {
            (_, m) if m == f64::NEG_INFINITY => None,
            (true, m) => Some(format!("at least {m}")),
            (false, m) => Some(format!("greater than {m}")),
        };
        let high = match (self.max_inclusive, self.max) {
            (_, m) if m == f64::INFINITY => None,
            (true, m) => Some(format!("at most {m}")),
            (false, m) => Some(format!("less than {m}")),
        };
        match (low, high) {
            (Some(l), Some(h)) => format!(" {l} and {h}"),
            (Some(l), None) => format!(" {l}"),
            (None, Some(h)) => format!(" {h}"),
            (None, None) => String::new(),
        }
    }
}

/// A plugin's configuration, consumed knob by knob.
#[derive(Debug, Clone)]
pub struct Config {
    entries: Vec<Entry>,
    known: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: String,
    read: bool,
}

impl Config {
    /// Wraps the pairs given to `configure`. Keys and values are trimmed of
    /// surrounding whitespace; a key given twice is an error.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut entries: Vec<Entry> = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let key = key.trim();
            if entries.iter().any(|e| e.key == key) {
                return Err(ConfigError::Duplicate {
                    key: key.to_owned(),
                });
            }
            entries.push(Entry {
                key: key.to_owned(),
                value: value.trim().to_owned(),
                read: false,
            });
        }
        Ok(Self {
            entries,
            known: Vec::new(),
        })
    }

    /// A number (`f64`, finite) within `bounds`, or `default` when the key is absent.
    pub fn number(&mut self, key: &str, default: f64, bounds: Bounds) -> Result<f64, ConfigError> {
        match self.take(key) {
            None => Ok(default),
            Some(value) => parse_number(key, &value, bounds),
        }
    }

    /// A whole number within `bounds`, or `default` when the key is absent.
    pub fn count(
        &mut self,
        key: &str,
        default: usize,
        bounds: Bounds,
    ) -> Result<usize, ConfigError> {
        match self.take(key) {
            None => Ok(default),
            Some(value) => parse_count(key, &value, bounds),
        }
    }

    /// Every `(suffix, number)` whose key is `prefix` followed by a non-empty
    /// suffix, such as the per-function overrides `budget_ms.<function>`.
    /// `pattern` describes the keys in the list of known keys (`budget_ms.<function>`).
    pub fn numbers_with_prefix(
        &mut self,
        prefix: &str,
        pattern: &str,
        bounds: Bounds,
    ) -> Result<Vec<(String, f64)>, ConfigError> {
        self.known.push(pattern.to_owned());
        let mut found = Vec::new();
        for entry in &mut self.entries {
            let Some(suffix) = entry.key.strip_prefix(prefix) else {
                continue;
            };
            if suffix.is_empty() {
                continue; // left for `finish` to report as unknown
            }
            entry.read = true;
            found.push((
                suffix.to_owned(),
                parse_number(&entry.key, &entry.value, bounds)?,
            ));
        }
        Ok(found)
    }

    /// Fails on the first key that no knob read.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.entries.into_iter().find(|e| !e.read) {
            None => Ok(()),
            Some(entry) => Err(ConfigError::Unknown {
                key: entry.key,
                known: self.known,
            }),
        }
    }

    fn take(&mut self, key: &str) -> Option<String> {
        self.known.push(key.to_owned());
        let entry = self.entries.iter_mut().find(|e| e.key == key)?;
        entry.read = true;
        Some(entry.value.clone())
    }
}

fn parse_number(key: &str, value: &str, bounds: Bounds) -> Result<f64, ConfigError> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && bounds.contains(n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: format!("a number{}", bounds.describe()),
        }),
    }
}

fn parse_count(key: &str, value: &str, bounds: Bounds) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        // A count fits an f64 exactly far beyond any sensible knob.
        #[allow(clippy::cast_precision_loss)]
        Ok(n) if bounds.contains(n as f64) => Ok(n),
        _ => Err(ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: format!("a whole number{}", bounds.describe()),
        }),
    }
}

/// Key/value pairs as the host hands them to `configure`, from string
/// slices: what plugin tests write to configure a plugin.
#[cfg(any(test, feature = "fixtures"))]
pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_an_empty_config() {
        let mut config = Config::parse(&[]).expect("empty config");
        assert_eq!(config.count("top_n", 10, Bounds::at_least(1.0)), Ok(10));
        assert_eq!(config.number("x", 0.5, Bounds::open_unit()), Ok(0.5));
        assert_eq!(config.finish(), Ok(()));
    }

    #[test]
    fn values_parse_and_are_trimmed() {
        let mut config =
            Config::parse(&pairs(&[(" top_n ", " 3 "), ("share", "0.25")])).expect("config");
        assert_eq!(config.count("top_n", 10, Bounds::at_least(1.0)), Ok(3));
        assert_eq!(config.number("share", 0.5, Bounds::open_unit()), Ok(0.25));
        assert_eq!(config.finish(), Ok(()));
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        let mut config = Config::parse(&pairs(&[("top_n", "ten")])).expect("config");
        let err = config
            .count("top_n", 10, Bounds::at_least(1.0))
            .expect_err("not a number");
        assert_eq!(
            err.to_string(),
            "top_n must be a whole number at least 1, got 'ten'"
        );

        let mut config = Config::parse(&pairs(&[("share", "1.5")])).expect("config");
        let err = config
            .number("share", 0.5, Bounds::open_unit())
            .expect_err("out of bounds");
        assert_eq!(
            err.to_string(),
            "share must be a number greater than 0 and less than 1, got '1.5'"
        );
    }

    #[test]
    fn non_finite_numbers_are_rejected() {
        for bad in ["NaN", "inf", "-inf", ""] {
            let mut config = Config::parse(&pairs(&[("x", bad)])).expect("config");
            assert!(
                config.number("x", 1.0, Bounds::positive()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_an_error_listing_the_known_ones() {
        let mut config = Config::parse(&pairs(&[("tpo_n", "3")])).expect("config");
        let _ = config.count("top_n", 10, Bounds::at_least(1.0));
        let _ = config.number("module_threshold_ms", 100.0, Bounds::positive());
        assert_eq!(
            config.finish().expect_err("unknown").to_string(),
            "unknown config key 'tpo_n' (known keys: top_n, module_threshold_ms)"
        );
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let err = Config::parse(&pairs(&[("a", "1"), ("a", "2")])).expect_err("duplicate");
        assert_eq!(err.to_string(), "config key 'a' is given more than once");
    }

    #[test]
    fn prefixed_keys_collect_overrides() {
        let mut config = Config::parse(&pairs(&[
            ("budget_ms", "1000"),
            ("budget_ms.orders", "3000"),
            ("budget_ms.users-api", "250.5"),
        ]))
        .expect("config");
        assert_eq!(
            config.number("budget_ms", 1.0, Bounds::positive()),
            Ok(1000.0)
        );
        let overrides = config
            .numbers_with_prefix("budget_ms.", "budget_ms.<function>", Bounds::positive())
            .expect("overrides");
        assert_eq!(
            overrides,
            vec![
                ("orders".to_owned(), 3000.0),
                ("users-api".to_owned(), 250.5)
            ]
        );
        assert_eq!(config.finish(), Ok(()));
    }

    #[test]
    fn a_bad_override_names_its_full_key() {
        let mut config = Config::parse(&pairs(&[("budget_ms.orders", "-1")])).expect("config");
        let err = config
            .numbers_with_prefix("budget_ms.", "budget_ms.<function>", Bounds::positive())
            .expect_err("negative");
        assert_eq!(
            err.to_string(),
            "budget_ms.orders must be a number greater than 0, got '-1'"
        );
    }

    #[test]
    fn an_empty_override_suffix_is_unknown() {
        let mut config = Config::parse(&pairs(&[("budget_ms.", "5")])).expect("config");
        let _ =
            config.numbers_with_prefix("budget_ms.", "budget_ms.<function>", Bounds::positive());
        assert!(matches!(
            config.finish(),
            Err(ConfigError::Unknown { key, .. }) if key == "budget_ms."
        ));
    }
}

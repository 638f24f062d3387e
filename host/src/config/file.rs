//! `pyrometer.toml`: the extension's settings as a file, shipped in the layer
//! beside the plugins it names (`/opt/pyrometer/pyrometer.toml` in Lambda).
//!
//! It holds one key per `PYROMETER_*` variable (the table in [`super`] maps
//! them), plus one `[[plugin]]` table per plugin:
//!
//! ```toml
//! pushgateway_url = "http://gateway.internal:9091"
//! flush = "periodic,5000"
//! emf = false
//!
//! [[plugin]]
//! path = "plugins/slow-imports.cwasm"  # relative to this file's directory
//! config = { top_n = 5 }               # strings, numbers or booleans
//! limits = { deadline_ms = 50 }        # any field of PluginLimits
//! ```
//!
//! Text enters through [`ConfigFile::read`] (or [`ConfigFile::parse`]); text
//! that is not TOML is a [`ConfigFileError`]. [`ConfigFile::apply`] sets what
//! the file holds onto a [`Config`], and every key it cannot use becomes a
//! [`ConfigWarning`] while the rest still applies — fail-open, as for the
//! variables. The layer build is strict instead: any warning fails the build,
//! and it writes the file back with its plugin list replaced ([`render`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Config, ConfigWarning, SETTINGS};
use crate::plugins::{PluginLimits, PluginSpec};

/// The file's name, in the layer's `pyrometer/` directory.
pub const FILE_NAME: &str = "pyrometer.toml";
/// [`ConfigWarning::key`] of a problem with the file as a whole.
pub const FILE_KEY: &str = "pyrometer.toml";
/// The key of the plugin list (`[[plugin]]`).
pub const PLUGIN_KEY: &str = "plugin";

/// Which file to read: `named` (from `PYROMETER_CONFIG`) when given, else
/// `pyrometer.toml` in `layer_dir` when it exists. A named file that does not
/// exist is still returned, so that reading it warns.
pub fn locate(named: Option<PathBuf>, layer_dir: Option<&Path>) -> Option<PathBuf> {
    named.or_else(|| {
        layer_dir
            .map(|dir| dir.join(FILE_NAME))
            .filter(|path| path.exists())
    })
}

/// A `pyrometer.toml` that cannot be used at all. Each reads as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("{path} is not valid TOML: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and what, e.g. `line 3, column 7: expected '='`.
        reason: String,
    },
}

/// One `[[plugin]]` table: a plugin as the file names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The `.cwasm` (or `.wasm`), relative to the file's directory unless absolute.
    pub path: PathBuf,
    /// The name in logs, labels and findings; the file stem when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Settings passed to the plugin's `configure`; numbers and booleans
    /// are passed as their text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, toml::Value>,
    /// Limits; each field defaults independently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<PluginLimits>,
}

impl PluginEntry {
    /// The entry for `spec`, its file written as `path`; limits are only
    /// written when they differ from the defaults.
    pub fn from_spec(spec: &PluginSpec, path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            name: spec.name.clone(),
            config: spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                .collect(),
            limits: (spec.limits != PluginLimits::default()).then(|| spec.limits.clone()),
        }
    }

    /// The spec this entry describes, its path resolved against `dir`.
    fn into_spec(self, dir: &Path) -> Result<PluginSpec, String> {
        let mut config = BTreeMap::new();
        for (key, value) in self.config {
            let text = scalar_text(&value)
                .ok_or_else(|| format!("config.{key}: expected a string, number or boolean"))?;
            config.insert(key, text);
        }
        Ok(PluginSpec {
            path: dir.join(self.path),
            name: self.name,
            config,
            limits: self.limits.unwrap_or_default(),
        })
    }
}

/// A parsed `pyrometer.toml`, not yet applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the file at `path` (which relative plugin paths are
    /// resolved against, and messages name).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigFileError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigFileError::Syntax {
                path: path.to_owned(),
                reason: one_line_toml_error(text, &e),
            })?;
        Ok(Self {
            path: path.to_owned(),
            table,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets every key the file holds onto `config`; returns what could not be
    /// used (those settings keep their value).
    pub fn apply(&self, config: &mut Config) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        let mut warn = |key: &'static str, message: String| {
            let path = self.path.display();
            warnings.push(ConfigWarning {
                key,
                message: format!("{path}: {message}"),
            });
        };
        for (key, value) in &self.table {
            if key == PLUGIN_KEY {
                let (plugins, problems) = self.plugins(value);
                config.plugins = plugins;
                for problem in problems {
                    warn(PLUGIN_KEY, problem);
                }
                continue;
            }
            let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
                let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
                warn(
                    FILE_KEY,
                    format!(
                        "unknown key `{key}` (known: {}, [[{PLUGIN_KEY}]])",
                        known.join(", ")
                    ),
                );
                continue;
            };
            let applied = scalar_text(value)
                .ok_or_else(|| "expected a string, number or boolean".to_owned())
                .and_then(|text| (setting.apply)(config, text.trim()));
            if let Err(message) = applied {
                warn(setting.key, format!("{key}: {message}"));
            }
        }
        warnings
    }

    /// Every key but the plugin list, as written.
    pub fn settings(&self) -> toml::Table {
        let mut settings = self.table.clone();
        settings.remove(PLUGIN_KEY);
        settings
    }

    /// The plugins of the `[[plugin]]` list that can be used, and why the
    /// others cannot.
    fn plugins(&self, value: &toml::Value) -> (Vec<PluginSpec>, Vec<String>) {
        let Some(entries) = value.as_array() else {
            let problem = format!("`{PLUGIN_KEY}` must be a list of tables: [[{PLUGIN_KEY}]]");
            return (Vec::new(), vec![problem]);
        };
        let dir = self.dir();
        let mut plugins = Vec::new();
        let mut problems = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let spec = entry
                .clone()
                .try_into::<PluginEntry>()
                .map_err(|e| one_line(&e.to_string()))
                .and_then(|entry| entry.into_spec(&dir));
            match spec {
                Ok(spec) => plugins.push(spec),
                Err(message) => problems.push(format!("[[{PLUGIN_KEY}]] {}: {message}", i + 1)),
            }
        }
        (plugins, problems)
    }

    /// The directory relative plugin paths start from.
    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        }
    }
}

/// The text of a `pyrometer.toml` holding `settings` and `plugins`, under a
/// comment saying where it came from and that variables override it. Only
/// the limits that differ from their defaults are written.
pub fn render(settings: &toml::Table, plugins: &[PluginEntry]) -> Result<String, toml::ser::Error> {
    let mut table = settings.clone();
    if !plugins.is_empty() {
        let defaults = toml::Value::try_from(PluginLimits::default())?;
        let mut entries = Vec::with_capacity(plugins.len());
        for plugin in plugins {
            let mut entry = toml::Value::try_from(plugin)?;
            if let Some(toml::Value::Table(limits)) = entry.get_mut("limits") {
                limits.retain(|key, value| defaults.get(key) != Some(value));
            }
            entries.push(entry);
        }
        table.insert(PLUGIN_KEY.to_owned(), toml::Value::Array(entries));
    }
    let body = toml::to_string(&table)?;
    Ok(format!(
        "# pyrometer extension settings, written by `pyrometer layer build`.\n\
         # The function's PYROMETER_* environment variables override these keys.\n\n{body}"
    ))
}

/// A setting's value as the text its variable would hold; `None` for arrays,
/// tables and dates.
fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// A TOML parse error as `line L, column C: what` (the crate's own text is
/// several lines with a source excerpt).
fn one_line_toml_error(text: &str, e: &toml::de::Error) -> String {
    let what = one_line(e.message());
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {what}")
        }
        None => what,
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::FlushStrategy;

    fn parse(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("/opt/pyrometer/pyrometer.toml"), text).expect("valid TOML")
    }

    fn applied(text: &str) -> (Config, Vec<ConfigWarning>) {
        let mut config = Config::default();
        let warnings = parse(text).apply(&mut config);
        (config, warnings)
    }

    #[test]
    fn every_key_sets_what_its_variable_sets() {
        let (config, warnings) = applied(
            r#"
            pushgateway_url = "http://gw:9091"
            remote_write_url = "http://prom/api/v1/write"
            emf = true
            flush = "periodic,5000"
            flush_budget_ms = 150
            probe_socket = "/tmp/x.sock"
            log = "debug"
            shutdown_margin_ms = 300
            fail_init_on_error = true

            [[plugin]]
            path = "plugins/slow-imports.cwasm"
            config = { top_n = 3, strict = true, mode = "fast" }

            [[plugin]]
            path = "/abs/memory-trend.cwasm"
            name = "leaks"
            limits = { deadline_ms = 50 }
            "#,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let (env, env_warnings) = Config::from_vars([
            ("PYROMETER_PUSHGATEWAY_URL", "http://gw:9091"),
            ("PYROMETER_REMOTE_WRITE_URL", "http://prom/api/v1/write"),
            ("PYROMETER_EMF", "1"),
            ("PYROMETER_FLUSH", "periodic,5000"),
            ("PYROMETER_FLUSH_BUDGET_MS", "150"),
            ("PYROMETER_PROBE_SOCKET", "/tmp/x.sock"),
            ("PYROMETER_LOG", "debug"),
            ("PYROMETER_SHUTDOWN_MARGIN_MS", "300"),
            ("PYROMETER_FAIL_INIT_ON_ERROR", "1"),
        ]);
        assert!(env_warnings.is_empty());
        assert_eq!(
            Config {
                plugins: Vec::new(),
                ..config.clone()
            },
            env,
            "the file and the variables mean the same"
        );
        let [imports, leaks] = &config.plugins[..] else {
            panic!("two plugins: {:?}", config.plugins);
        };
        assert_eq!(
            imports.path,
            Path::new("/opt/pyrometer/plugins/slow-imports.cwasm")
        );
        let settings: Vec<_> = imports
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            settings,
            [("mode", "fast"), ("strict", "1"), ("top_n", "3")]
        );
        assert_eq!(leaks.path, Path::new("/abs/memory-trend.cwasm"));
        assert_eq!(leaks.display_name(), "leaks");
        assert_eq!(leaks.limits.deadline(), Duration::from_millis(50));
        assert_eq!(
            leaks.limits.memory_cap_bytes,
            PluginLimits::default().memory_cap_bytes
        );
    }

    #[test]
    fn unusable_keys_warn_and_the_rest_still_applies() {
        let (config, warnings) = applied(
            r#"
            flush = "sometimes"
            flush_budget_ms = "soon"
            emf = [1]
            pushgateway_url = "http://gw:9091"
            colour = "blue"

            [[plugin]]
            path = "a.cwasm"
            colour = "blue"

            [[plugin]]
            path = "b.cwasm"
            config = { nested = { x = 1 } }

            [[plugin]]
            path = "c.cwasm"
            "#,
        );
        let keys: Vec<_> = warnings.iter().map(|w| w.key).collect();
        assert_eq!(
            keys,
            [
                FILE_KEY,
                "emf",
                "flush",
                "flush_budget_ms",
                "plugin",
                "plugin"
            ],
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .all(|w| w.message.starts_with("/opt/pyrometer/pyrometer.toml: ")
                    && !w.message.contains('\n')),
            "{warnings:?}"
        );
        assert!(warnings[0].message.contains("unknown key `colour`"));
        assert_eq!(config.flush, FlushStrategy::End);
        assert!(config.export.pushgateway.is_some());
        let names: Vec<_> = config
            .plugins
            .iter()
            .map(PluginSpec::display_name)
            .collect();
        assert_eq!(names, ["c"]);
    }

    #[test]
    fn text_that_is_not_toml_is_one_line_naming_the_place() {
        let e = ConfigFile::parse(Path::new("x/pyrometer.toml"), "flush = \"end\"\nemf = \n")
            .expect_err("invalid");
        let text = e.to_string();
        assert!(
            text.starts_with("x/pyrometer.toml is not valid TOML: line 2, column "),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        let e = ConfigFile::read(Path::new("/nonexistent/pyrometer.toml")).expect_err("missing");
        assert!(matches!(e, ConfigFileError::Read { .. }), "{e}");
    }

    #[test]
    fn the_file_is_found_in_the_layer_unless_one_is_named() {
        let dir = std::env::temp_dir().join(format!("pyrometer-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(locate(None, Some(&dir)), None, "no file, no warning");
        std::fs::write(dir.join(FILE_NAME), "").expect("write");
        assert_eq!(locate(None, Some(&dir)), Some(dir.join(FILE_NAME)));
        let named = PathBuf::from("/elsewhere.toml");
        assert_eq!(locate(Some(named.clone()), Some(&dir)), Some(named));
        assert_eq!(locate(None, None), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rendered_files_read_back_as_written() {
        let file = parse("flush = \"end\"\nemf = true\n");
        let mut spec = PluginSpec::new("/build/slow-imports.wasm");
        spec.config.insert("top_n".into(), "3".into());
        spec.limits.deadline_ms = 40;
        let entries = [
            PluginEntry::from_spec(&spec, "plugins/slow-imports.cwasm"),
            PluginEntry::from_spec(&PluginSpec::new("x.wasm"), "plugins/x.cwasm"),
        ];
        let text = render(&file.settings(), &entries).expect("render");
        assert!(text.starts_with("# pyrometer extension settings"), "{text}");
        assert!(text.contains("deadline_ms = 40"), "{text}");
        assert!(
            !text.contains("memory_cap_bytes"),
            "default limits are left out: {text}"
        );
        let (config, warnings) = applied(&text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(config.export.emf.is_some());
        assert_eq!(config.plugins.len(), 2);
        assert_eq!(
            config.plugins[0].path,
            Path::new("/opt/pyrometer/plugins/slow-imports.cwasm")
        );
        assert_eq!(config.plugins[0].config, spec.config);
        assert_eq!(config.plugins[0].limits, spec.limits);
    }
}

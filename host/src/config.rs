//! The extension's configuration, in this one place with typed defaults:
//! `PYROMETER_*` environment variables over an optional `pyrometer.toml`.
//!
//! Variables enter as `(name, value)` pairs ([`Config::from_env`] reads the
//! process environment, [`Config::from_vars`] any list, for tests) and leave
//! as a [`Config`] plus the [`ConfigWarning`]s met on the way.
//! [`Config::load`] first reads the file ([`file`]): the one `PYROMETER_CONFIG`
//! names, else `pyrometer.toml` in the layer's directory (`/opt/pyrometer` in
//! Lambda); each variable that is set then overrides the file. Parsing is
//! **fail-open**: a bad value is reported as a warning and its default is
//! used, an unreadable or invalid file is one warning and none of it is used;
//! nothing here can stop the extension from starting. An empty variable
//! counts as unset.
//!
//! | Variable | `pyrometer.toml` | Default | Meaning |
//! |---|---|---|---|
//! | `PYROMETER_CONFIG` | — | `<layer>/pyrometer.toml` | The TOML file read before the variables (`/opt/pyrometer/pyrometer.toml` in Lambda, next to the extension's `../pyrometer/`). |
//! | `PYROMETER_PUSHGATEWAY_URL` | `pushgateway_url` | unset | Push every flush to this Pushgateway. |
//! | `PYROMETER_REMOTE_WRITE_URL` | `remote_write_url` | unset | Send every flush by Prometheus remote write. |
//! | `PYROMETER_EMF` | `emf` (`true`/`false`) | `0` | `1`: write CloudWatch EMF lines on stdout. |
//! | `PYROMETER_PLUGINS` | `[[plugin]]` `path` | unset | Comma-separated plugin paths (`.cwasm` precompiled, `.wasm` accepted). In the file, one `[[plugin]]` table per plugin, its `path` relative to the file's directory; the variable replaces the file's whole list. |
//! | `PYROMETER_PLUGIN_CONFIG` | `[[plugin]]` `config = { key = value }` | unset | `plugin:key=value;…`, `plugin` being a plugin's name (its file stem); applied over the file's settings. The file also takes `name` and `limits = { deadline_ms = …, memory_cap_bytes = … }` per plugin. |
//! | `PYROMETER_FLUSH` | `flush` | `end` | `end` (after every invocation), `periodic,<ms>`, or `adaptive[,<ms>]` (`end` while invocations come less often than every `<ms>`, default 10000; `periodic,<ms>` while they come more often). |
//! | `PYROMETER_FLUSH_BUDGET_MS` | `flush_budget_ms` | `200` | Most time one flush may take, all exporters together. |
//! | `PYROMETER_PROBE_SOCKET` | `probe_socket` | `/tmp/pyrometer-probe.sock` | Unix datagram socket the Python probe sends to. |
//! | `PYROMETER_LOG` | `log` | `warn,pyrometer::export=error` | Log filter (a tracing directive such as `info` or `debug`). The default leaves per-flush export failures to the extension, which logs the first of each kind and counts the rest. |
//! | `PYROMETER_SHUTDOWN_MARGIN_MS` | `shutdown_margin_ms` | `200` | Kept free before SHUTDOWN's `deadlineMs`. |
//! | `PYROMETER_FAIL_INIT_ON_ERROR` | `fail_init_on_error` (`true`/`false`) | `0` | `1`: report setup errors with `init/error` (fails the function's init). |

pub mod file;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::export::{EmfConfig, ExportConfig, PushgatewayConfig, RemoteWriteConfig};
use crate::plugins::{PluginSetting, PluginSpec};

pub use file::{ConfigFile, ConfigFileError};

/// The variable naming the configuration file.
pub const CONFIG_VAR: &str = "PYROMETER_CONFIG";
/// The variable listing plugins (`path,path,…`).
const PLUGINS_VAR: &str = "PYROMETER_PLUGINS";
/// The variable holding per-plugin settings (`plugin:key=value;…`).
const PLUGIN_CONFIG_VAR: &str = "PYROMETER_PLUGIN_CONFIG";

/// A setting that is one value: its variable, its key in `pyrometer.toml`
/// and how its text sets it (plugins, which are lists of tables in the file,
/// are read on their own). A value that cannot be used leaves the setting as
/// it was and says why.
struct Setting {
    var: &'static str,
    key: &'static str,
    apply: fn(&mut Config, &str) -> Result<(), String>,
}

/// Every one-value setting, in the order of the table above.
const SETTINGS: &[Setting] = &[
    Setting {
        var: "PYROMETER_PUSHGATEWAY_URL",
        key: "pushgateway_url",
        apply: |c, v| {
            c.export.pushgateway = Some(PushgatewayConfig::new(v));
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_REMOTE_WRITE_URL",
        key: "remote_write_url",
        apply: |c, v| {
            c.export.remote_write = Some(RemoteWriteConfig::new(v));
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_EMF",
        key: "emf",
        apply: |c, v| {
            c.export.emf = parse_bool(v)?.then(EmfConfig::default);
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_FLUSH",
        key: "flush",
        apply: |c, v| {
            c.flush = parse_flush(v)?;
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_FLUSH_BUDGET_MS",
        key: "flush_budget_ms",
        apply: |c, v| {
            c.export.flush_budget_ms = parse_ms(v)?.as_millis() as u64;
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_PROBE_SOCKET",
        key: "probe_socket",
        apply: |c, v| {
            c.probe_socket = PathBuf::from(v);
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_LOG",
        key: "log",
        apply: |c, v| {
            c.log = v.to_owned();
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_SHUTDOWN_MARGIN_MS",
        key: "shutdown_margin_ms",
        apply: |c, v| {
            c.shutdown_margin = parse_ms(v)?;
            Ok(())
        },
    },
    Setting {
        var: "PYROMETER_FAIL_INIT_ON_ERROR",
        key: "fail_init_on_error",
        apply: |c, v| {
            c.fail_init_on_error = parse_bool(v)?;
            Ok(())
        },
    },
];

/// Default flush budget, ms: small, because the function's caller waits for it.
pub const DEFAULT_FLUSH_BUDGET_MS: u64 = 200;
/// Default probe socket (the exec wrapper's default too).
pub const DEFAULT_PROBE_SOCKET: &str = "/tmp/pyrometer-probe.sock";
/// Default time kept free before SHUTDOWN's deadline, ms.
pub const DEFAULT_SHUTDOWN_MARGIN_MS: u64 = 200;
/// Default log filter: exporters log every failed flush themselves, which
/// the extension replaces with one line per kind of fault.
pub const DEFAULT_LOG: &str = "warn,pyrometer::export=error";

/// When metrics are pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStrategy {
    /// After every invocation, before the extension calls `next`.
    End,
    /// After an invocation when at least this long has passed since the last flush.
    Periodic(Duration),
    /// `end` while invocations are sparse (this long or more apart), `periodic`
    /// with this period while they are dense.
    Adaptive(Duration),
}

/// The period of `adaptive` when none is given, ms.
pub const DEFAULT_ADAPTIVE_PERIOD_MS: u64 = 10_000;

/// A value that could not be used; its default was used instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The variable, the key in `pyrometer.toml`, or [`file::FILE_KEY`] for
    /// the file as a whole.
    pub key: &'static str,
    /// What was wrong with it.
    pub message: String,
}

/// The extension's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Exporters and the flush budget.
    pub export: ExportConfig,
    /// Plugins run over every flushed batch.
    pub plugins: Vec<PluginSpec>,
    /// When to flush.
    pub flush: FlushStrategy,
    /// The probe's socket.
    pub probe_socket: PathBuf,
    /// The log filter.
    pub log: String,
    /// Kept free before SHUTDOWN's deadline.
    pub shutdown_margin: Duration,
    /// Whether setup errors fail the function's init (`init/error`).
    pub fail_init_on_error: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            export: ExportConfig {
                flush_budget_ms: DEFAULT_FLUSH_BUDGET_MS,
                ..ExportConfig::default()
            },
            plugins: Vec::new(),
            flush: FlushStrategy::End,
            probe_socket: PathBuf::from(DEFAULT_PROBE_SOCKET),
            log: DEFAULT_LOG.to_owned(),
            shutdown_margin: Duration::from_millis(DEFAULT_SHUTDOWN_MARGIN_MS),
            fail_init_on_error: false,
        }
    }
}

impl Config {
    /// The configuration in this process's environment, over the file
    /// `PYROMETER_CONFIG` names (if any).
    pub fn from_env() -> (Self, Vec<ConfigWarning>) {
        Self::load(std::env::vars(), None)
    }

    /// The configuration in `vars` over a `pyrometer.toml`: the file
    /// `PYROMETER_CONFIG` names, else the one in `layer_dir` if there is one.
    /// A file that cannot be used is a warning, never an error.
    pub fn load<I, K, V>(vars: I, layer_dir: Option<&Path>) -> (Self, Vec<ConfigWarning>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        let mut config = Self::default();
        let mut warnings = Vec::new();
        let named = vars
            .iter()
            .find(|(k, v)| k == CONFIG_VAR && !v.trim().is_empty())
            .map(|(_, v)| PathBuf::from(v.trim()));
        if let Some(path) = file::locate(named, layer_dir) {
            match ConfigFile::read(&path) {
                Ok(file) => warnings.extend(file.apply(&mut config)),
                Err(e) => warnings.push(ConfigWarning {
                    key: file::FILE_KEY,
                    message: e.to_string(),
                }),
            }
        }
        config.apply_vars(vars, &mut warnings);
        (config, warnings)
    }

    /// The configuration in `vars` alone; unknown names are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> (Self, Vec<ConfigWarning>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::default();
        let mut warnings = Vec::new();
        config.apply_vars(vars, &mut warnings);
        (config, warnings)
    }

    /// Applies every known, non-empty variable of `vars` over the current
    /// settings; what cannot be used becomes a warning.
    fn apply_vars<I, K, V>(&mut self, vars: I, warnings: &mut Vec<ConfigWarning>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut plugin_config = None;
        for (key, value) in vars {
            let value = value.as_ref().trim();
            // An empty variable counts as unset, so it never hides the file's value.
            if value.is_empty() {
                continue;
            }
            match key.as_ref() {
                PLUGINS_VAR => {
                    self.plugins = value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(PluginSpec::new)
                        .collect();
                    continue;
                }
                PLUGIN_CONFIG_VAR => {
                    plugin_config = Some(value.to_owned());
                    continue;
                }
                _ => {}
            }
            let Some(setting) = SETTINGS.iter().find(|s| s.var == key.as_ref()) else {
                continue;
            };
            if let Err(message) = (setting.apply)(self, value) {
                warnings.push(ConfigWarning {
                    key: setting.var,
                    message,
                });
            }
        }
        // Settings name plugins, so they apply once every plugin is known.
        if let Some(settings) = plugin_config {
            for message in apply_plugin_config(&mut self.plugins, &settings) {
                warnings.push(ConfigWarning {
                    key: PLUGIN_CONFIG_VAR,
                    message,
                });
            }
        }
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("{value:?} is not 0 or 1")),
    }
}

fn parse_ms(value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{value:?} is not a whole number of milliseconds"))
}

fn parse_flush(value: &str) -> Result<FlushStrategy, String> {
    let period = |ms: &str| match parse_ms(ms.trim())? {
        ms if ms.is_zero() => Err(format!("{value:?}: the period must be positive")),
        ms => Ok(ms),
    };
    match value.split_once(',') {
        None if value == "end" || value.is_empty() => Ok(FlushStrategy::End),
        None if value == "adaptive" => Ok(FlushStrategy::Adaptive(Duration::from_millis(
            DEFAULT_ADAPTIVE_PERIOD_MS,
        ))),
        Some(("periodic", ms)) => period(ms).map(FlushStrategy::Periodic),
        Some(("adaptive", ms)) => period(ms).map(FlushStrategy::Adaptive),
        _ => Err(format!(
            "{value:?}: expected end, periodic,<ms> or adaptive[,<ms>]"
        )),
    }
}

/// Applies `plugin:key=value;…` to `plugins`; returns what could not be applied.
fn apply_plugin_config(plugins: &mut [PluginSpec], settings: &str) -> Vec<String> {
    settings
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|setting| {
            setting
                .parse::<PluginSetting>()
                .and_then(|s| s.apply(plugins))
                .err()
                .map(|problem| format!("{setting:?}: {problem}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_gives_the_defaults() {
        let (config, warnings) = Config::from_vars(Vec::<(String, String)>::new());
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty());
        assert_eq!(config.export.flush_budget_ms, DEFAULT_FLUSH_BUDGET_MS);
    }

    #[test]
    fn every_variable_is_read() {
        let (config, warnings) = Config::from_vars([
            ("PYROMETER_PUSHGATEWAY_URL", "http://gw:9091"),
            ("PYROMETER_REMOTE_WRITE_URL", "http://prom/api/v1/write"),
            ("PYROMETER_EMF", "1"),
            ("PYROMETER_PLUGINS", "/opt/a.cwasm, /opt/b.wasm"),
            ("PYROMETER_PLUGIN_CONFIG", "a:top=5;b:mode=strict"),
            ("PYROMETER_FLUSH", "periodic,5000"),
            ("PYROMETER_FLUSH_BUDGET_MS", "150"),
            ("PYROMETER_PROBE_SOCKET", "/tmp/x.sock"),
            ("PYROMETER_LOG", "debug"),
            ("PYROMETER_FAIL_INIT_ON_ERROR", "1"),
            ("OTHER", "ignored"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.export.pushgateway.map(|p| p.url).as_deref(),
            Some("http://gw:9091")
        );
        assert!(config.export.remote_write.is_some() && config.export.emf.is_some());
        assert_eq!(config.plugins.len(), 2);
        assert_eq!(
            config.plugins[0].config.get("top").map(String::as_str),
            Some("5")
        );
        assert_eq!(
            config.plugins[1].config.get("mode").map(String::as_str),
            Some("strict")
        );
        assert_eq!(
            config.flush,
            FlushStrategy::Periodic(Duration::from_secs(5))
        );
        assert_eq!(config.export.flush_budget_ms, 150);
        assert_eq!(config.probe_socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(config.log, "debug");
        assert!(config.fail_init_on_error);
    }

    #[test]
    fn bad_values_warn_and_keep_their_defaults() {
        let (config, warnings) = Config::from_vars([
            ("PYROMETER_EMF", "maybe"),
            ("PYROMETER_FLUSH", "sometimes"),
            ("PYROMETER_FLUSH_BUDGET_MS", "-3"),
            ("PYROMETER_PLUGIN_CONFIG", "nope;ghost:k=v"),
        ]);
        let keys: Vec<_> = warnings.iter().map(|w| w.key).collect();
        assert_eq!(
            keys,
            [
                "PYROMETER_EMF",
                "PYROMETER_FLUSH",
                "PYROMETER_FLUSH_BUDGET_MS",
                "PYROMETER_PLUGIN_CONFIG",
                "PYROMETER_PLUGIN_CONFIG"
            ]
        );
        assert_eq!(config, Config::default());
        assert!(parse_flush("periodic,0").is_err());
        assert_eq!(
            parse_flush("adaptive"),
            Ok(FlushStrategy::Adaptive(Duration::from_secs(10)))
        );
        assert_eq!(
            parse_flush("adaptive,500"),
            Ok(FlushStrategy::Adaptive(Duration::from_millis(500)))
        );
    }

    /// A fresh directory holding `pyrometer.toml` with `text`.
    fn layer_dir_with(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pyrometer-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(file::FILE_NAME), text).expect("write");
        dir
    }

    #[test]
    fn variables_override_the_layer_file() {
        let dir = layer_dir_with(
            "override",
            r#"
            pushgateway_url = "http://file:9091"
            flush = "periodic,5000"
            log = "info"

            [[plugin]]
            path = "plugins/a.cwasm"
            config = { top_n = 3 }
            "#,
        );
        let (config, warnings) = Config::load(
            [
                ("PYROMETER_PUSHGATEWAY_URL", "http://env:9091"),
                ("PYROMETER_PLUGIN_CONFIG", "a:mode=strict"),
                ("PYROMETER_LOG", ""),
            ],
            Some(&dir),
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.export.pushgateway.map(|p| p.url).as_deref(),
            Some("http://env:9091"),
            "the variable wins"
        );
        assert_eq!(
            config.flush,
            FlushStrategy::Periodic(Duration::from_secs(5)),
            "the file fills what the environment leaves unset"
        );
        assert_eq!(config.log, "info", "an empty variable counts as unset");
        let [plugin] = &config.plugins[..] else {
            panic!("one plugin: {:?}", config.plugins);
        };
        assert_eq!(plugin.path, dir.join("plugins/a.cwasm"));
        let settings: Vec<_> = plugin
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(settings, [("mode", "strict"), ("top_n", "3")]);

        let (config, _) = Config::load([("PYROMETER_PLUGINS", "/x/b.cwasm")], Some(&dir));
        let paths: Vec<_> = config.plugins.iter().map(|p| p.path.clone()).collect();
        assert_eq!(
            paths,
            [PathBuf::from("/x/b.cwasm")],
            "the variable replaces the list"
        );

        let other = layer_dir_with("named", "flush = \"adaptive\"\n");
        let named = other.join(file::FILE_NAME);
        let named = named.to_str().expect("utf-8");
        let (config, warnings) = Config::load([(CONFIG_VAR, named)], Some(&dir));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.flush,
            FlushStrategy::Adaptive(Duration::from_millis(DEFAULT_ADAPTIVE_PERIOD_MS)),
            "PYROMETER_CONFIG names the file instead of the layer's"
        );
        assert!(config.export.pushgateway.is_none());
        for d in [dir, other] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn an_unusable_file_is_one_warning_and_the_variables_still_apply() {
        let dir = layer_dir_with("invalid", "flush = \"end\"\npushgateway_url = \n");
        let (config, warnings) = Config::load([("PYROMETER_LOG", "debug")], Some(&dir));
        let [warning] = &warnings[..] else {
            panic!("one warning: {warnings:?}");
        };
        assert_eq!(warning.key, file::FILE_KEY);
        assert!(
            warning.message.contains("is not valid TOML: line 2"),
            "{warning:?}"
        );
        assert_eq!(
            config,
            Config {
                log: "debug".into(),
                ..Config::default()
            }
        );

        let (config, warnings) = Config::load([(CONFIG_VAR, "/nonexistent/pyrometer.toml")], None);
        assert_eq!(config, Config::default());
        assert!(
            warnings.len() == 1 && warnings[0].message.starts_with("cannot read /nonexistent"),
            "{warnings:?}"
        );
        let (_, warnings) = Config::load(
            Vec::<(String, String)>::new(),
            Some(Path::new("/nonexistent")),
        );
        assert!(warnings.is_empty(), "no file in the layer is no warning");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The Lambda extension's configuration, read from `PYROMETER_*` environment
//! variables in this one place, with typed defaults.
//!
//! Variables enter as `(name, value)` pairs ([`Config::from_env`] reads the
//! process environment, [`Config::from_vars`] any list, for tests) and leave
//! as a [`Config`] plus the [`ConfigWarning`]s met on the way. Parsing is
//! **fail-open**: a bad value is reported as a warning and its default is
//! used; nothing here can stop the extension from starting.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `PYROMETER_PUSHGATEWAY_URL` | unset | Push every flush to this Pushgateway. |
//! | `PYROMETER_REMOTE_WRITE_URL` | unset | Send every flush by Prometheus remote write. |
//! | `PYROMETER_EMF` | `0` | `1`: write CloudWatch EMF lines on stdout. |
//! | `PYROMETER_PLUGINS` | unset | Comma-separated plugin paths (`.cwasm` precompiled, `.wasm` accepted). |
//! | `PYROMETER_PLUGIN_CONFIG` | unset | `plugin:key=value;…`, `plugin` being a plugin's file stem. |
//! | `PYROMETER_FLUSH` | `end` | `end` (after every invocation), `periodic,<ms>`, or `adaptive[,<ms>]` (`end` while invocations come less often than every `<ms>`, default 10000; `periodic,<ms>` while they come more often). |
//! | `PYROMETER_FLUSH_BUDGET_MS` | `200` | Most time one flush may take, all exporters together. |
//! | `PYROMETER_PROBE_SOCKET` | `/tmp/pyrometer-probe.sock` | Unix datagram socket the Python probe sends to. |
//! | `PYROMETER_LOG` | `warn,pyrometer::export=error` | Log filter (a tracing directive such as `info` or `debug`). The default leaves per-flush export failures to the extension, which logs the first of each kind and counts the rest. |
//! | `PYROMETER_SHUTDOWN_MARGIN_MS` | `200` | Kept free before SHUTDOWN's `deadlineMs`. |
//! | `PYROMETER_FAIL_INIT_ON_ERROR` | `0` | `1`: report setup errors with `init/error` (fails the function's init). |

use std::path::PathBuf;
use std::time::Duration;

use crate::export::{EmfConfig, ExportConfig, PushgatewayConfig, RemoteWriteConfig};
use crate::plugins::PluginSpec;

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
    /// The variable.
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
    /// The configuration in this process's environment.
    pub fn from_env() -> (Self, Vec<ConfigWarning>) {
        Self::from_vars(std::env::vars())
    }

    /// The configuration in `vars`; unknown names are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> (Self, Vec<ConfigWarning>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::default();
        let mut warnings = Vec::new();
        let mut warn = |key: &'static str, message: String| {
            warnings.push(ConfigWarning { key, message });
        };
        let mut plugin_config = None;
        for (key, value) in vars {
            let value = value.as_ref().trim();
            match key.as_ref() {
                "PYROMETER_PUSHGATEWAY_URL" if !value.is_empty() => {
                    config.export.pushgateway = Some(PushgatewayConfig::new(value));
                }
                "PYROMETER_REMOTE_WRITE_URL" if !value.is_empty() => {
                    config.export.remote_write = Some(RemoteWriteConfig::new(value));
                }
                "PYROMETER_EMF" => match parse_bool(value) {
                    Some(on) => config.export.emf = on.then(EmfConfig::default),
                    None => warn("PYROMETER_EMF", format!("{value:?} is not 0 or 1")),
                },
                "PYROMETER_PLUGINS" => {
                    config.plugins = value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(PluginSpec::new)
                        .collect();
                }
                "PYROMETER_PLUGIN_CONFIG" => plugin_config = Some(value.to_owned()),
                "PYROMETER_FLUSH" => match parse_flush(value) {
                    Ok(flush) => config.flush = flush,
                    Err(message) => warn("PYROMETER_FLUSH", message),
                },
                "PYROMETER_FLUSH_BUDGET_MS" => match parse_ms(value) {
                    Ok(ms) => config.export.flush_budget_ms = ms.as_millis() as u64,
                    Err(message) => warn("PYROMETER_FLUSH_BUDGET_MS", message),
                },
                "PYROMETER_PROBE_SOCKET" if !value.is_empty() => {
                    config.probe_socket = PathBuf::from(value);
                }
                "PYROMETER_LOG" if !value.is_empty() => config.log = value.to_owned(),
                "PYROMETER_SHUTDOWN_MARGIN_MS" => match parse_ms(value) {
                    Ok(ms) => config.shutdown_margin = ms,
                    Err(message) => warn("PYROMETER_SHUTDOWN_MARGIN_MS", message),
                },
                "PYROMETER_FAIL_INIT_ON_ERROR" => {
                    config.fail_init_on_error = parse_bool(value).unwrap_or_else(|| {
                        warn(
                            "PYROMETER_FAIL_INIT_ON_ERROR",
                            format!("{value:?} is not 0 or 1"),
                        );
                        false
                    });
                }
                _ => {}
            }
        }
        // Settings name plugins, so they apply once every plugin is known.
        if let Some(settings) = plugin_config {
            for message in apply_plugin_config(&mut config.plugins, &settings) {
                warn("PYROMETER_PLUGIN_CONFIG", message);
            }
        }
        (config, warnings)
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
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
    let mut problems = Vec::new();
    for setting in settings.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = setting
            .split_once(':')
            .and_then(|(plugin, kv)| Some((plugin, kv.split_once('=')?)));
        let Some((plugin, (key, value))) = parsed else {
            problems.push(format!("{setting:?}: expected plugin:key=value"));
            continue;
        };
        match plugins.iter_mut().find(|s| s.display_name() == plugin) {
            Some(spec) => {
                spec.config.insert(key.to_owned(), value.to_owned());
            }
            None => problems.push(format!("{setting:?}: no plugin named {plugin:?}")),
        }
    }
    problems
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
}

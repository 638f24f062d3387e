//! The WebAssembly plugin host: user-supplied analysis rules, sandboxed.
//!
//! A plugin is a component implementing `pyrometer:plugin/analyzer` (see
//! `wit/plugin.wit`). [`PluginSet`] loads plugins from [`PluginSpec`]s, and
//! [`PluginSet::run`] hands each one the batch collected since the last flush,
//! returning their validated metrics and findings. Every plugin runs under
//! [`PluginLimits`] — a per-call deadline, a memory cap, output caps — in a
//! WASI sandbox with no files, environment, network or inherited stdio, and a
//! plugin that keeps failing is disabled by a circuit breaker. Nothing a
//! plugin does can fail the caller: failures come back as values and metrics.
//!
//! Module map: [`engine`] (engine settings, epoch ticker), [`limits`],
//! [`artifact`] (`.wasm`/`.cwasm` loading, capability policy), [`sandbox`]
//! (store state, WASI, host `log`), [`capture`] (bounded stdout/stderr),
//! [`runner`] (one plugin: warm instance, traps, breaker), [`validate`]
//! (output checks), [`convert`] (model ↔ WIT), [`telemetry`] (self-metrics).

pub mod artifact;
pub mod capture;
pub mod convert;
pub mod engine;
pub mod error;
pub mod limits;
pub mod runner;
pub mod sandbox;
pub mod telemetry;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Linker;

pub use artifact::ComponentSummary;
pub use engine::{EpochTicker, plugin_engine};
pub use error::{CallError, FailureKind, LoadError};
pub use limits::PluginLimits;
pub use runner::Plugin;

use crate::model::{Batch, PluginOutput};
use sandbox::PluginState;
use validate::MetricKinds;

/// Host bindings generated from `wit/plugin.wit`.
pub mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "analyzer",
    });
}

/// One plugin as configured: which file, under what name, with what config
/// and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The `.wasm` or `.cwasm` file.
    pub path: PathBuf,
    /// The name used in logs, labels and findings; defaults to the file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Key/value configuration passed to the plugin's `configure`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Limits; each field defaults independently.
    #[serde(default)]
    pub limits: PluginLimits,
}

impl PluginSpec {
    /// A spec for `path` with default name, no config and default limits.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            name: None,
            config: BTreeMap::new(),
            limits: PluginLimits::default(),
        }
    }

    /// The configured name, or the file stem.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plugin".into())
        })
    }
}

/// One plugin setting written `PLUGIN:KEY=VALUE`, `PLUGIN` being a plugin's
/// name (its file stem by default), as `--plugin-config` and
/// `PYROMETER_PLUGIN_CONFIG` take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSetting {
    /// The plugin's name.
    pub plugin: String,
    /// The configuration key.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl std::str::FromStr for PluginSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (plugin, (key, value)) = s
            .split_once(':')
            .and_then(|(plugin, kv)| Some((plugin, kv.split_once('=')?)))
            .ok_or_else(|| "expected PLUGIN:KEY=VALUE".to_owned())?;
        Ok(Self {
            plugin: plugin.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl std::fmt::Display for PluginSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}={}", self.plugin, self.key, self.value)
    }
}

impl PluginSetting {
    /// Sets the key on the plugin of `specs` it names.
    pub fn apply(&self, specs: &mut [PluginSpec]) -> Result<(), String> {
        let spec = specs
            .iter_mut()
            .find(|s| s.display_name() == self.plugin)
            .ok_or_else(|| format!("no plugin named {:?}", self.plugin))?;
        spec.config.insert(self.key.clone(), self.value.clone());
        Ok(())
    }
}

/// What one run of every plugin over a batch produced.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Validated metrics and findings of every plugin that succeeded, plus a
    /// finding for every plugin the breaker disabled during this run.
    pub output: PluginOutput,
    /// Every failed call, in plugin order.
    pub failures: Vec<CallError>,
}

/// All configured plugins, sharing one engine, linker and epoch ticker.
pub struct PluginSet {
    engine: Engine,
    linker: Linker<PluginState>,
    ticker: EpochTicker,
    plugins: Vec<Plugin>,
    kinds: MetricKinds,
}

impl PluginSet {
    /// An empty set with its engine and ticker running.
    pub fn new() -> anyhow::Result<Self> {
        let engine = plugin_engine()
            .map_err(|e| anyhow::anyhow!("cannot create the plugin engine: {e:#}"))?;
        let linker =
            sandbox::linker(&engine).map_err(|e| anyhow::anyhow!("cannot link WASI: {e:#}"))?;
        let ticker = EpochTicker::start(&engine)?;
        Ok(Self {
            engine,
            linker,
            ticker,
            plugins: Vec::new(),
            kinds: MetricKinds::default(),
        })
    }

    /// The engine, for precompiling and inspecting components with exactly
    /// the runtime's settings.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads and starts one plugin. On error the set is unchanged; callers
    /// that must fail open log the error and carry on without the plugin.
    pub fn add(&mut self, spec: &PluginSpec) -> Result<(), LoadError> {
        let plugin = Plugin::load(
            &self.engine,
            &self.linker,
            &self.ticker,
            &spec.display_name(),
            &spec.path,
            spec.config.clone().into_iter().collect(),
            spec.limits.clone(),
        )?;
        self.plugins.push(plugin);
        Ok(())
    }

    /// Checks that `path` is a loadable plugin — a component within the
    /// capability policy that links and implements the world — and lists what
    /// it imports and exports. Nothing is instantiated.
    pub fn check(&self, path: &std::path::Path) -> Result<ComponentSummary, LoadError> {
        let pre = runner::prepare(&self.engine, &self.linker, path)?;
        Ok(artifact::summarize(
            &self.engine,
            pre.instance_pre().component(),
        ))
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Runs every plugin over `batch` (converted to columns once).
    pub fn run(&mut self, batch: &Batch) -> RunReport {
        let columns = convert::batch_to_wit(batch);
        let mut report = RunReport::default();
        for plugin in &mut self.plugins {
            match plugin.analyze(
                &self.ticker,
                &columns,
                &mut self.kinds,
                &mut report.output.findings,
            ) {
                Ok(out) => {
                    report.output.metrics.extend(out.metrics);
                    report.output.findings.extend(out.findings);
                }
                Err(e) => report.failures.push(e),
            }
        }
        report
    }

    /// Runs one plugin (by index) over an already converted batch; the
    /// building block of [`run`](Self::run), public for benchmarks.
    pub fn run_one(
        &mut self,
        index: usize,
        columns: &bindings::pyrometer::plugin::types::Batch,
    ) -> Option<Result<PluginOutput, CallError>> {
        let plugin = self.plugins.get_mut(index)?;
        let mut findings = Vec::new();
        Some(plugin.analyze(&self.ticker, columns, &mut self.kinds, &mut findings))
    }

    /// Re-instantiates one plugin (by index), as after a trap; for benchmarks.
    pub fn reinstantiate_one(&mut self, index: usize) -> Option<Result<(), CallError>> {
        let plugin = self.plugins.get_mut(index)?;
        Some(plugin.reinstantiate(&self.ticker))
    }
}

//! Flags shared by the commands that run Python code: plugins and exporters.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use pyrometer::export::ExportConfig;
use pyrometer::export::emf::EmfConfig;
use pyrometer::export::pushgateway::PushgatewayConfig;
use pyrometer::export::remote_write::RemoteWriteConfig;
use pyrometer::plugins::{PluginSetting, PluginSpec};

/// `--plugin` and `--plugin-config`.
#[derive(Debug, Args)]
pub(crate) struct PluginArgs {
    /// An analysis plugin (.wasm or .cwasm) run over what was measured (repeatable).
    #[arg(long = "plugin", value_name = "PLUGIN")]
    plugins: Vec<PathBuf>,
    /// A plugin setting as PLUGIN:KEY=VALUE, PLUGIN being the plugin file's stem (repeatable).
    #[arg(long = "plugin-config", value_name = "PLUGIN:KEY=VALUE")]
    plugin_config: Vec<String>,
}

impl PluginArgs {
    /// The plugins with their settings; a setting naming no `--plugin` is an error.
    pub(crate) fn specs(&self) -> anyhow::Result<Vec<PluginSpec>> {
        let mut specs: Vec<PluginSpec> = self.plugins.iter().map(PluginSpec::new).collect();
        for text in &self.plugin_config {
            text.parse::<PluginSetting>()
                .and_then(|setting| setting.apply(&mut specs))
                .map_err(|e| anyhow!("--plugin-config {text:?}: {e}"))?;
        }
        Ok(specs)
    }
}

/// `--push-gateway`, `--remote-write` and `--emf`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Push metrics to this Prometheus Pushgateway on every flush.
    #[arg(long, value_name = "URL")]
    push_gateway: Option<String>,
    /// Send metrics to this Prometheus remote-write endpoint on every flush.
    #[arg(long, value_name = "URL")]
    remote_write: Option<String>,
    /// Print CloudWatch EMF lines on stdout on every flush.
    #[arg(long)]
    emf: bool,
}

impl ExportArgs {
    /// The exporters asked for, `None` when none was.
    pub(crate) fn config(&self) -> Option<ExportConfig> {
        (self.push_gateway.is_some() || self.remote_write.is_some() || self.emf).then(|| {
            ExportConfig {
                pushgateway: self.push_gateway.clone().map(PushgatewayConfig::new),
                remote_write: self.remote_write.clone().map(RemoteWriteConfig::new),
                emf: self.emf.then(EmfConfig::default),
                ..ExportConfig::default()
            }
        })
    }
}

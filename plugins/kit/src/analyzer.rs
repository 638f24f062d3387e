//! The trait every first-party plugin implements, and the two calls the
//! component adapter makes on it.

use crate::config::{Config, ConfigError};
use crate::log::Log;
use crate::model::Batch;
use crate::output::Output;

/// A plugin's behaviour, free of any WIT type.
///
/// [`export_analyzer!`](crate::export_analyzer) turns an implementation into the
/// component's `configure` and `analyze` exports; tests call [`configure`] and
/// [`analyze`] directly.
pub trait Analyzer: Sized {
    /// Reads every knob from `config` (with its default when absent) and builds
    /// a fresh analyzer with empty state. Unknown keys are rejected after this
    /// returns, by [`configure`].
    fn from_config(config: &mut Config) -> Result<Self, ConfigError>;

    /// Analyzes one batch, whose columns are known to be consistent (see
    /// [`Batch::validate`]). An error is counted by the host as a failure.
    fn analyze(&mut self, batch: &Batch, log: &mut dyn Log) -> Result<Output, String>;
}

/// Builds an analyzer from the pairs given to `configure`: parses them, reads
/// the knobs, and rejects keys no knob read.
pub fn configure<A: Analyzer>(pairs: &[(String, String)]) -> Result<A, ConfigError> {
    let mut config = Config::parse(pairs)?;
    let analyzer = A::from_config(&mut config)?;
    config.finish()?;
    Ok(analyzer)
}

/// Validates `batch` and hands it to the analyzer.
pub fn analyze<A: Analyzer>(
    analyzer: &mut A,
    batch: &Batch,
    log: &mut dyn Log,
) -> Result<Output, String> {
    batch.validate()?;
    analyzer.analyze(batch, log)
}

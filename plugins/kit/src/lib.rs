//! What the first-party pyrometer plugins share.
//!
//! A plugin is a WebAssembly component for the `pyrometer:plugin` world. This
//! crate holds everything that is not specific to one plugin, as plain Rust that
//! compiles and tests natively:
//!
//! - [`model`]: the batch a plugin receives, as columns (a mirror of the WIT
//!   `batch`), with the validation every plugin needs;
//! - [`output`]: the metrics and findings a plugin returns, with builders;
//! - [`config`]: typed knobs parsed from the `list<tuple<string, string>>`
//!   configuration, with errors that name the key and the bad value;
//! - [`stats`] and [`window`]: quantiles, least squares, sliding windows and
//!   per-function state;
//! - [`prom`]: Prometheus name rules and label helpers; [`human`]: figures for messages;
//! - [`Analyzer`] and [`export_analyzer!`]: the trait a plugin implements and the
//!   macro that binds it to the wit-bindgen generated world, so that the WIT
//!   conversions are written once.
//!
//! The crate does not depend on wit-bindgen: [`export_analyzer!`] expands inside
//! the plugin crate, next to the bindings the plugin generates.

pub mod config;
pub mod human;
pub mod log;
pub mod model;
pub mod output;
pub mod prom;
pub mod stats;
pub mod window;

mod analyzer;
mod export;

#[cfg(feature = "fixtures")]
pub mod fixtures;

pub use analyzer::{Analyzer, analyze, configure};
pub use config::{Bounds, Config, ConfigError};
pub use log::{Level, Log};
pub use model::{Batch, FunctionInfo, ImportProfile, Invocations, Origin, Status};
pub use output::{Finding, Metric, MetricKind, Output, Severity};

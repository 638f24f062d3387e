//! pyrometer: see why a Python function is slow to start and slow to run.
//!
//! The crate is the whole pipeline as a library — **sources → collector →
//! plugins → export** — plus the `pyrometer` CLI (`src/main.rs`), which stays a
//! thin layer over it. [`model`] is the vocabulary every stage speaks.

pub mod collector;
pub mod config;
pub mod emulator;
pub mod export;
pub mod layer;
pub mod local_lambda;
pub mod metrics_sink;
pub mod model;
pub mod plugins;
pub mod python_assets;
pub mod report;
pub mod sidecar;
pub mod sources;

//! [`EmulatorError`]: what stops the emulator itself from doing what it was
//! asked. A function that fails (at init or in an invocation) is not an error
//! of the emulator: it is an outcome, reported in [`super::InvokeOutcome`].

use std::path::PathBuf;

/// Why the emulator could not start or run an invocation.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration cannot work (the detail says why).
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// The API server could not bind its address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The emulator's own async runtime could not start.
    #[error("cannot start the emulator's runtime: {0}")]
    Runtime(std::io::Error),
    /// An extensions directory could not be read.
    #[error("cannot read extensions directory {path}: {source}")]
    ExtensionsDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The invocation payload is over Lambda's 6 MB limit.
    #[error("invocation payload of {size} bytes is over the {limit}-byte limit")]
    PayloadTooLarge {
        /// Payload size, bytes.
        size: usize,
        /// The limit, bytes.
        limit: usize,
    },
    /// A telemetry subscription was refused (the detail says why).
    #[error("telemetry subscription refused: {0}")]
    Subscription(String),
}

//! Why a plugin could not be loaded, and why a call failed.

use std::fmt;
use std::path::PathBuf;

/// A plugin file that cannot become a running plugin. Every variant names the
/// file and reads as one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither a `.wasm` nor a `.cwasm`.
    #[error("{path} is not a WebAssembly file (no \\0asm header) nor a pyrometer .cwasm")]
    NotWasm {
        /// The plugin file.
        path: PathBuf,
    },
    /// A core module or precompiled module where a component was expected.
    #[error(
        "{path} is {what}, not a component: build plugins for wasm32-wasip2 (or wrap with `wasm-tools component new`)"
    )]
    NotAComponent {
        /// The plugin file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The component failed to validate or compile.
    #[error("cannot compile {path}: {reason}")]
    Compile {
        /// The plugin file.
        path: PathBuf,
        /// wasmtime's explanation.
        reason: String,
    },
    /// A `.cwasm` that this build cannot load: corrupt, for another CPU, or
    /// from another wasmtime version or engine configuration.
    #[error(
        "cannot load precompiled {path}: {reason} (recompile it with this pyrometer: `pyrometer plugin compile PLUGIN.wasm -o {path}`)"
    )]
    Precompiled {
        /// The plugin file.
        path: PathBuf,
        /// wasmtime's explanation.
        reason: String,
    },
    /// A `.wasm` handed to a build without the `compiler` feature (the lean
    /// Lambda extension), which loads precompiled `.cwasm` only.
    #[error(
        "cannot load {path}: this build has no WebAssembly compiler and loads precompiled .cwasm plugins only; precompile it with `pyrometer plugin compile {path} -o {cwasm}`, or build the layer with `pyrometer layer build`, which precompiles its plugins"
    )]
    NoCompiler {
        /// The plugin file.
        path: PathBuf,
        /// Where `plugin compile` would write its `.cwasm`.
        cwasm: PathBuf,
    },
    /// `plugin compile` was handed a `.cwasm`.
    #[error("{path} is already precompiled; compile the original .wasm")]
    AlreadyPrecompiled {
        /// The plugin file.
        path: PathBuf,
    },
    /// The component imports a capability pyrometer does not grant.
    #[error(
        "{path} imports `{import}`, which pyrometer does not grant to plugins (granted: pyrometer:plugin/host, wasi:cli, wasi:io, wasi:clocks, wasi:random, wasi:filesystem without directories)"
    )]
    Capability {
        /// The plugin file.
        path: PathBuf,
        /// The offending import.
        import: String,
    },
    /// The component imports something the linker has no implementation for.
    #[error("cannot link {path}: {reason}")]
    Unlinkable {
        /// The plugin file.
        path: PathBuf,
        /// wasmtime's explanation, naming the import.
        reason: String,
    },
    /// The component does not implement the `pyrometer:plugin/analyzer` world.
    #[error("{path} does not implement pyrometer:plugin/analyzer@0.1.0: {reason}")]
    World {
        /// The plugin file.
        path: PathBuf,
        /// wasmtime's explanation.
        reason: String,
    },
    /// Instantiation or `configure` failed, or the plugin rejected its config.
    #[error("plugin {plugin} failed to start: {reason}")]
    Start {
        /// The plugin name.
        plugin: String,
        /// What went wrong (the plugin's own message for a rejected config).
        reason: String,
    },
}

/// The kinds of call failure, as counted in `pyrometer_plugin_failures_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The call ran past its deadline and was interrupted.
    Deadline,
    /// The call tried to grow memory past the cap.
    Memory,
    /// Any other trap (a panic, `unreachable`, an out-of-bounds access…).
    Trap,
    /// The plugin returned an output that breaks the contract or a limit.
    InvalidOutput,
    /// The plugin returned `Err` from `analyze`.
    Error,
    /// The call was refused because the plugin is disabled.
    Disabled,
}

impl FailureKind {
    /// The label value used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Memory => "memory",
            Self::Trap => "trap",
            Self::InvalidOutput => "invalid_output",
            Self::Error => "error",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed call: its kind and a one-line explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: {kind}: {message}")]
pub struct CallError {
    /// The plugin name.
    pub plugin: String,
    /// What kind of failure.
    pub kind: FailureKind,
    /// Details for a human.
    pub message: String,
}

/// The first line of an error chain, for one-line messages.
pub(crate) fn first_line(e: &wasmtime::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

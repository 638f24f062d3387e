//! pyrometer as an AWS Lambda layer: what goes where under `/opt`, how a
//! layer zip is built ([`build`]) and how one is unpacked into a directory
//! that plays `/opt` on this machine ([`mount`]).
//!
//! ```text
//! extensions/pyrometer-extension   the external extension (0755): Lambda starts every /opt/extensions/*
//! pyrometer/pyrometer-exec-wrapper AWS_LAMBDA_EXEC_WRAPPER=/opt/pyrometer/pyrometer-exec-wrapper (0755)
//! pyrometer/sitecustomize.py       the Python probe, which the wrapper puts on PYTHONPATH
//! pyrometer/pyrometer_probe/…
//! pyrometer/plugins/<name>.cwasm   plugins, precompiled by the build from the .wasm handed in
//! pyrometer/pyrometer.toml         the extension's settings, naming the plugins
//! ```
//!
//! The extension finds the `pyrometer/` directory beside the `extensions/`
//! directory it runs from ([`dir_of_extension`]), so nothing about the layer
//! has to be configured by the user but the exec wrapper.

pub mod build;
pub mod mount;
pub mod zip;

use std::path::{Path, PathBuf};

use crate::config::ConfigFileError;
use crate::plugins::LoadError;
use crate::python_assets::EXEC_WRAPPER;

pub use build::{BuiltLayer, LayerBuild, LayerFile, build};
pub use mount::{MountedLayer, mount};

/// Where Lambda unpacks layers.
pub const LAMBDA_OPT_DIR: &str = "/opt";
/// The directory of external extensions, in a layer.
pub const EXTENSIONS_DIR: &str = "extensions";
/// The extension's file name (Lambda registers it under this name).
pub const EXTENSION_FILE: &str = "pyrometer-extension";
/// pyrometer's own directory, in a layer: the probe, plugins and settings.
pub const PYROMETER_DIR: &str = "pyrometer";
/// The plugins' directory, inside [`PYROMETER_DIR`].
pub const PLUGINS_DIR: &str = "plugins";
/// Lambda's limit on a function and its layers unzipped: 250 MB.
pub const LAMBDA_UNZIPPED_LIMIT_BYTES: u64 = 250 * 1024 * 1024;

/// The layer's `pyrometer/` directory for an extension executable at `exe`:
/// `<opt>/extensions/pyrometer-extension` → `<opt>/pyrometer`.
pub fn dir_of_extension(exe: &Path) -> Option<PathBuf> {
    let opt = exe.parent()?.parent()?;
    Some(opt.join(PYROMETER_DIR))
}

/// The value of `AWS_LAMBDA_EXEC_WRAPPER` for a function with the layer.
pub fn lambda_exec_wrapper() -> String {
    format!("{LAMBDA_OPT_DIR}/{PYROMETER_DIR}/{EXEC_WRAPPER}")
}

/// Why a layer could not be built or unpacked. Each reads as one line that
/// names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The extension binary is not a Linux executable.
    #[error(
        "{path} is not a Linux executable (no ELF header): pass the pyrometer-extension binary"
    )]
    NotAnExecutable {
        /// The file.
        path: PathBuf,
    },
    /// The settings file is unreadable or not TOML.
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    /// A setting the extension could not use.
    #[error("{0}")]
    Setting(String),
    /// A plugin that is not a valid component, or that cannot be precompiled.
    #[error(transparent)]
    Plugin(#[from] LoadError),
    /// A precompiled plugin that does not load, or rejects its settings.
    #[error("{path} does not load as a pyrometer plugin: {source}")]
    PluginRejected {
        /// The plugin as handed in.
        path: PathBuf,
        /// Why.
        source: LoadError,
    },
    /// Two plugins with one name, or a name that cannot be a file name.
    #[error("{0}")]
    PluginName(String),
    /// A zip that cannot be read or written.
    #[error("{path}: {source}")]
    Zip {
        /// The zip file.
        path: PathBuf,
        /// What is wrong.
        source: zip::ZipError,
    },
    /// A zip entry whose path would land outside the layer directory.
    #[error("{path}: entry {entry:?} would be written outside the layer")]
    UnsafeEntry {
        /// The zip file.
        path: PathBuf,
        /// The entry's name.
        entry: String,
    },
    /// A zip without an `extensions/` directory.
    #[error("{path} has no extensions/ directory: not a Lambda layer with an external extension")]
    NoExtensions {
        /// The zip file.
        path: PathBuf,
    },
    /// A zip that unzips past Lambda's limit.
    #[error("{path} unzips to {bytes} bytes, over Lambda's limit of {LAMBDA_UNZIPPED_LIMIT_BYTES}")]
    TooLarge {
        /// The zip file.
        path: PathBuf,
        /// Its unzipped size.
        bytes: u64,
    },
    /// The plugin engine could not start.
    #[error("cannot start the plugin engine: {0}")]
    Engine(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_finds_the_layer_beside_its_directory() {
        assert_eq!(
            dir_of_extension(Path::new("/opt/extensions/pyrometer-extension")),
            Some(PathBuf::from("/opt/pyrometer"))
        );
        assert_eq!(dir_of_extension(Path::new("pyrometer-extension")), None);
        assert_eq!(
            lambda_exec_wrapper(),
            "/opt/pyrometer/pyrometer-exec-wrapper"
        );
    }
}

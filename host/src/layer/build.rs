//! Building the layer zip: the extension binary, the probe, the plugins —
//! checked and precompiled here so the extension never compiles on a cold
//! start — and the `pyrometer.toml` that names them.
//!
//! A [`LayerBuild`] enters (files as the user handed them in) and a zip file
//! leaves, with a [`BuiltLayer`] listing what it holds. Every input is
//! checked before anything is written: the extension must be an ELF
//! executable, the settings file must be TOML the extension can use in full
//! (the fail-open reading the extension does at run time would hide a typo
//! until the metrics went missing), and each plugin must precompile, load
//! from its `.cwasm` and accept its settings. The zip is deterministic:
//! entries sorted, every timestamp 1980-01-01.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::zip::{EntryKind, ZipEntry, write_zip};
use super::{EXTENSION_FILE, EXTENSIONS_DIR, LayerError, PLUGINS_DIR, PYROMETER_DIR};
use crate::config::file::{FILE_NAME, PluginEntry, render};
use crate::config::{Config, ConfigFile};
use crate::export::Identity;
use crate::metrics_sink::MetricsSink;
use crate::model::FunctionInfo;
use crate::plugins::{PluginSet, PluginSetting, PluginSpec, artifact};
use crate::python_assets::{EXEC_WRAPPER, PYTHON_ASSETS};

/// The first bytes of every ELF file.
const ELF_MAGIC: &[u8] = b"\x7fELF";
/// Mode of executables and directories in the layer.
const MODE_EXECUTABLE: u32 = 0o755;
/// Mode of every other file.
const MODE_FILE: u32 = 0o644;

/// What goes into a layer.
#[derive(Debug, Clone, Default)]
pub struct LayerBuild {
    /// The `pyrometer-extension` binary.
    pub extension: PathBuf,
    /// Plugins (`.wasm` components) beyond those the settings file lists.
    pub plugins: Vec<PluginSpec>,
    /// Settings applied to the plugins, by name, after the file's own.
    pub settings: Vec<PluginSetting>,
    /// A `pyrometer.toml` to check and ship; its `[[plugin]]` paths are
    /// relative to its own directory and name `.wasm` files too.
    pub config: Option<PathBuf>,
}

/// One file or directory of a built layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFile {
    /// Its path under `/opt` (directories end with `/`).
    pub path: String,
    /// Its mode.
    pub mode: u32,
    /// Its size unzipped, bytes (0 for a directory).
    pub size: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// Every entry, in the zip's order.
    pub files: Vec<LayerFile>,
    /// The zip's size, bytes.
    pub zip_bytes: u64,
}

/// Checks everything `spec` names and writes the layer zip to `out`
/// (through a temporary file beside it, so a failed build leaves no zip).
pub fn build(spec: &LayerBuild, out: &Path) -> Result<BuiltLayer, LayerError> {
    let mut files: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    let extension = read(&spec.extension)?;
    if !extension.starts_with(ELF_MAGIC) {
        return Err(LayerError::NotAnExecutable {
            path: spec.extension.clone(),
        });
    }
    files.insert(
        format!("{EXTENSIONS_DIR}/{EXTENSION_FILE}"),
        (MODE_EXECUTABLE, extension),
    );
    for (relative, contents) in PYTHON_ASSETS {
        let mode = if *relative == EXEC_WRAPPER {
            MODE_EXECUTABLE
        } else {
            MODE_FILE
        };
        files.insert(
            format!("{PYROMETER_DIR}/{relative}"),
            (mode, contents.as_bytes().to_vec()),
        );
    }
    let (settings, mut plugins) = match &spec.config {
        Some(path) => checked_config(path)?,
        None => (toml::Table::new(), Vec::new()),
    };
    plugins.extend(spec.plugins.iter().cloned());
    for setting in &spec.settings {
        setting.apply(&mut plugins).map_err(|problem| {
            LayerError::Setting(format!("plugin setting {setting}: {problem}"))
        })?;
    }
    let mut entries = Vec::with_capacity(plugins.len());
    for (spec, cwasm) in precompiled(&plugins)? {
        let relative = format!("{PLUGINS_DIR}/{}.cwasm", spec.display_name());
        entries.push(PluginEntry::from_spec(&spec, &relative));
        files.insert(format!("{PYROMETER_DIR}/{relative}"), (MODE_FILE, cwasm));
    }
    let toml = render(&settings, &entries)
        .map_err(|e| LayerError::Setting(format!("cannot write {FILE_NAME}: {e}")))?;
    files.insert(
        format!("{PYROMETER_DIR}/{FILE_NAME}"),
        (MODE_FILE, toml.into_bytes()),
    );
    write(out, zip_entries(files))
}

/// The settings file, checked as strictly as the extension reads it
/// leniently: its settings (to ship as written) and its plugins.
fn checked_config(path: &Path) -> Result<(toml::Table, Vec<PluginSpec>), LayerError> {
    let file = ConfigFile::read(path)?;
    let mut config = Config::default();
    if let Some(warning) = file.apply(&mut config).into_iter().next() {
        return Err(LayerError::Setting(warning.message));
    }
    // Exporters check their URLs when built; nothing is sent.
    let identity = Identity::for_function(&FunctionInfo::default(), "layer-build");
    MetricsSink::new(Some(&config.export), identity)
        .map_err(|e| LayerError::Setting(format!("{}: {e}", path.display())))?;
    Ok((file.settings(), config.plugins))
}

/// Each plugin precompiled, after loading the precompiled bytes with its
/// settings exactly as the extension will.
fn precompiled(plugins: &[PluginSpec]) -> Result<Vec<(PluginSpec, Vec<u8>)>, LayerError> {
    if plugins.is_empty() {
        return Ok(Vec::new());
    }
    check_names(plugins)?;
    let mut set = PluginSet::new().map_err(|e| LayerError::Engine(format!("{e:#}")))?;
    let staging = tempfile::tempdir().map_err(|source| LayerError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let mut compiled = Vec::with_capacity(plugins.len());
    for spec in plugins {
        let cwasm = artifact::precompile(set.engine(), &spec.path)?;
        let staged = staging
            .path()
            .join(format!("{}.cwasm", spec.display_name()));
        std::fs::write(&staged, &cwasm).map_err(|source| LayerError::Write {
            path: staged.clone(),
            source,
        })?;
        let loaded = PluginSpec {
            path: staged,
            ..spec.clone()
        };
        set.add(&loaded)
            .map_err(|source| LayerError::PluginRejected {
                path: spec.path.clone(),
                source,
            })?;
        compiled.push((spec.clone(), cwasm));
    }
    Ok(compiled)
}

/// Plugin names become file names: each must be one and be unique.
fn check_names(plugins: &[PluginSpec]) -> Result<(), LayerError> {
    let mut seen = BTreeMap::new();
    for spec in plugins {
        let name = spec.display_name();
        let usable =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        if !usable {
            return Err(LayerError::PluginName(format!(
                "{}: the plugin name {name:?} cannot be a file name",
                spec.path.display()
            )));
        }
        if let Some(first) = seen.insert(name.clone(), &spec.path) {
            return Err(LayerError::PluginName(format!(
                "{} and {} are both named {name:?}: rename a file or give one a `name`",
                first.display(),
                spec.path.display()
            )));
        }
    }
    Ok(())
}

/// Files in path order, each after the directories above it.
fn zip_entries(files: BTreeMap<String, (u32, Vec<u8>)>) -> Vec<ZipEntry> {
    let mut entries: BTreeMap<String, ZipEntry> = BTreeMap::new();
    for (name, (mode, data)) in files {
        let mut end = 0;
        while let Some(slash) = name[end..].find('/') {
            end += slash + 1;
            let dir = &name[..end];
            entries.entry(dir.to_owned()).or_insert_with(|| ZipEntry {
                name: dir.to_owned(),
                kind: EntryKind::Directory,
                mode: MODE_EXECUTABLE,
                data: Vec::new(),
            });
        }
        entries.insert(
            name.clone(),
            ZipEntry {
                name,
                kind: EntryKind::File,
                mode,
                data,
            },
        );
    }
    entries.into_values().collect()
}

fn write(out: &Path, entries: Vec<ZipEntry>) -> Result<BuiltLayer, LayerError> {
    let write_error = |source| LayerError::Write {
        path: out.to_owned(),
        source,
    };
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut partial = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    let zip_bytes =
        write_zip(std::io::BufWriter::new(partial.as_file_mut()), &entries).map_err(|source| {
            LayerError::Zip {
                path: out.to_owned(),
                source,
            }
        })?;
    set_mode(partial.path(), MODE_FILE).map_err(write_error)?;
    partial.persist(out).map_err(|e| LayerError::Write {
        path: out.to_owned(),
        source: e.error,
    })?;
    let files = entries
        .into_iter()
        .map(|e| LayerFile {
            path: e.name,
            mode: e.mode,
            size: e.data.len() as u64,
        })
        .collect();
    Ok(BuiltLayer { files, zip_bytes })
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn read(path: &Path) -> Result<Vec<u8>, LayerError> {
    std::fs::read(path).map_err(|source| LayerError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_come_before_their_files_in_path_order() {
        let files = BTreeMap::from([
            ("b/c/d.txt".to_owned(), (MODE_FILE, b"d".to_vec())),
            ("a.txt".to_owned(), (MODE_FILE, Vec::new())),
            ("b/run".to_owned(), (MODE_EXECUTABLE, b"#!".to_vec())),
        ]);
        let names: Vec<_> = zip_entries(files).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a.txt", "b/", "b/c/", "b/c/d.txt", "b/run"]);
    }

    #[test]
    fn plugin_names_must_be_unique_file_names() {
        let ok = [PluginSpec::new("x/a.wasm"), PluginSpec::new("y/b.wasm")];
        assert!(check_names(&ok).is_ok());
        let twice = [PluginSpec::new("x/a.wasm"), PluginSpec::new("y/a.wasm")];
        let e = check_names(&twice).expect_err("duplicate").to_string();
        assert!(
            e.contains("x/a.wasm and y/a.wasm are both named \"a\""),
            "{e}"
        );
        let mut slash = PluginSpec::new("a.wasm");
        slash.name = Some("a/b".into());
        assert!(check_names(&[slash]).is_err());
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("pyrometer-extension");
        std::fs::write(&fake, "#!/bin/sh\n").expect("write");
        let out = dir.path().join("layer.zip");
        let spec = LayerBuild {
            extension: fake,
            ..LayerBuild::default()
        };
        let e = build(&spec, &out).expect_err("not ELF");
        assert!(matches!(e, LayerError::NotAnExecutable { .. }), "{e}");
        assert!(!out.exists());
    }
}

//! Unpacking a layer zip into a directory that plays `/opt`, as Lambda does
//! when a function has the layer attached, for `pyrometer lambda --layer`.
//!
//! A zip path and a directory enter; the unpacked files and a
//! [`MountedLayer`] saying where its extensions and exec wrapper are leave.
//! The whole listing is checked before anything is written: it must be a
//! zip, unzip within Lambda's size limit, keep every entry inside the
//! directory and hold an `extensions/` directory.

use std::path::{Component, Path, PathBuf};

use super::zip::{EntryInfo, EntryKind, ZipError, read_contents, read_entries};
use super::{EXTENSIONS_DIR, LAMBDA_UNZIPPED_LIMIT_BYTES, LayerError, PYROMETER_DIR};
use crate::python_assets::EXEC_WRAPPER;

/// Mode of unpacked files whose zip recorded none.
const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of unpacked directories whose zip recorded none.
const DEFAULT_DIRECTORY_MODE: u32 = 0o755;

/// A layer unpacked into a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedLayer {
    /// The directory playing `/opt`.
    pub opt: PathBuf,
    /// Its `extensions/`, whose executables Lambda starts as external extensions.
    pub extensions_dir: PathBuf,
    /// pyrometer's exec wrapper, when the layer is pyrometer's.
    pub exec_wrapper: Option<PathBuf>,
}

/// Unpacks the layer zip at `zip` into `opt` (created if needed).
pub fn mount(zip: &Path, opt: &Path) -> Result<MountedLayer, LayerError> {
    let bytes = std::fs::read(zip).map_err(|source| LayerError::Read {
        path: zip.to_owned(),
        source,
    })?;
    let zip_error = |source: ZipError| LayerError::Zip {
        path: zip.to_owned(),
        source,
    };
    let entries = read_entries(&bytes).map_err(zip_error)?;
    let unzipped: u64 = entries.iter().map(|e| e.size).sum();
    if unzipped > LAMBDA_UNZIPPED_LIMIT_BYTES {
        return Err(LayerError::TooLarge {
            path: zip.to_owned(),
            bytes: unzipped,
        });
    }
    let mut targets = Vec::with_capacity(entries.len());
    for entry in &entries {
        let relative = safe_relative(&entry.name).ok_or_else(|| LayerError::UnsafeEntry {
            path: zip.to_owned(),
            entry: entry.name.clone(),
        })?;
        targets.push(opt.join(relative));
    }
    let extensions_dir = opt.join(EXTENSIONS_DIR);
    if !targets
        .iter()
        .zip(&entries)
        .any(|(target, e)| e.kind != EntryKind::Directory && target.starts_with(&extensions_dir))
    {
        return Err(LayerError::NoExtensions {
            path: zip.to_owned(),
        });
    }
    let mut directories = Vec::new();
    for (entry, target) in entries.iter().zip(&targets) {
        if entry.kind == EntryKind::Directory {
            create_dir(target)?;
            directories.push((target, entry.mode.unwrap_or(DEFAULT_DIRECTORY_MODE)));
            continue;
        }
        let data = read_contents(&bytes, entry).map_err(zip_error)?;
        unpack_one(entry, target, &data)?;
    }
    // Directory modes last: a read-only directory would refuse its files.
    for (dir, mode) in directories {
        set_mode(dir, mode)?;
    }
    let exec_wrapper = opt.join(PYROMETER_DIR).join(EXEC_WRAPPER);
    Ok(MountedLayer {
        opt: opt.to_owned(),
        extensions_dir,
        exec_wrapper: exec_wrapper.is_file().then_some(exec_wrapper),
    })
}

/// Writes one file or link.
fn unpack_one(entry: &EntryInfo, target: &Path, data: &[u8]) -> Result<(), LayerError> {
    if let Some(parent) = target.parent() {
        create_dir(parent)?;
    }
    let written = match entry.kind {
        EntryKind::Symlink => {
            let link = String::from_utf8_lossy(data).into_owned();
            std::os::unix::fs::symlink(link, target)
        }
        EntryKind::File | EntryKind::Directory => std::fs::write(target, data),
    };
    written.map_err(|source| LayerError::Write {
        path: target.to_owned(),
        source,
    })?;
    if entry.kind == EntryKind::File {
        set_mode(target, entry.mode.unwrap_or(DEFAULT_FILE_MODE))?;
    }
    Ok(())
}

/// `name` as a relative path that stays inside the directory it is joined
/// to: no root, no `..`.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!relative.as_os_str().is_empty()).then_some(relative)
}

fn create_dir(path: &Path) -> Result<(), LayerError> {
    std::fs::create_dir_all(path).map_err(|source| LayerError::Write {
        path: path.to_owned(),
        source,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LayerError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        LayerError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::zip::{ZipEntry, write_zip};
    use super::*;

    fn zip_of(dir: &Path, entries: &[(&str, EntryKind, u32, &[u8])]) -> PathBuf {
        let entries: Vec<ZipEntry> = entries
            .iter()
            .map(|(name, kind, mode, data)| ZipEntry {
                name: (*name).to_owned(),
                kind: *kind,
                mode: *mode,
                data: data.to_vec(),
            })
            .collect();
        let path = dir.join("layer.zip");
        let mut out = Vec::new();
        write_zip(&mut out, &entries).expect("zip");
        std::fs::write(&path, out).expect("write");
        path
    }

    #[test]
    fn a_layer_unpacks_with_its_modes_and_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = zip_of(
            dir.path(),
            &[
                ("extensions/ext", EntryKind::File, 0o755, b"#!/bin/sh\n"),
                (
                    "pyrometer/pyrometer-exec-wrapper",
                    EntryKind::File,
                    0o755,
                    b"#!/bin/bash\n",
                ),
                ("lib/libx.so.1", EntryKind::File, 0o644, b"elf"),
                ("lib/libx.so", EntryKind::Symlink, 0o777, b"libx.so.1"),
            ],
        );
        let opt = dir.path().join("opt");
        let mounted = mount(&zip, &opt).expect("mount");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&opt.join("extensions/ext")), 0o755);
        assert_eq!(mode(&opt.join("lib/libx.so.1")), 0o644);
        assert_eq!(
            std::fs::read(opt.join("lib/libx.so")).expect("through the link"),
            b"elf"
        );
        assert_eq!(mounted.extensions_dir, opt.join("extensions"));
        assert_eq!(
            mounted.exec_wrapper,
            Some(opt.join("pyrometer/pyrometer-exec-wrapper"))
        );
    }

    #[test]
    fn zips_that_are_not_layers_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opt = dir.path().join("opt");
        let zip = zip_of(
            dir.path(),
            &[("python/lib.py", EntryKind::File, 0o644, b"")],
        );
        let e = mount(&zip, &opt).expect_err("no extensions");
        assert!(matches!(e, LayerError::NoExtensions { .. }), "{e}");
        let zip = zip_of(
            dir.path(),
            &[
                ("extensions/ext", EntryKind::File, 0o755, b""),
                ("../escape", EntryKind::File, 0o644, b""),
            ],
        );
        let e = mount(&zip, &opt).expect_err("escapes");
        assert!(matches!(e, LayerError::UnsafeEntry { .. }), "{e}");
        assert!(!opt.exists(), "nothing was written");
        let e = mount(&dir.path().join("missing.zip"), &opt).expect_err("missing");
        assert!(matches!(e, LayerError::Read { .. }), "{e}");
    }
}

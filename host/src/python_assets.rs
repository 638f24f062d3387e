//! The Python probe, embedded: `pyrometer lambda` and `pyrometer run` write it
//! to a directory and point the interpreter at it, so the binary needs nothing
//! from the source tree at run time.

use std::io;
use std::path::{Path, PathBuf};

/// Every shipped file of `host/python/`: (path relative to the probe directory, contents).
pub const PYTHON_ASSETS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/python_assets.rs"));
/// The exec wrapper's file name among [`PYTHON_ASSETS`].
pub const EXEC_WRAPPER: &str = "pyrometer-exec-wrapper";

/// Where the probe was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInstall {
    /// The directory (goes on `PYTHONPATH`; holds `sitecustomize.py`).
    pub dir: PathBuf,
    /// The exec wrapper (`AWS_LAMBDA_EXEC_WRAPPER`).
    pub exec_wrapper: PathBuf,
    /// The built-in Lambda runtime loop (`--runtime builtin`).
    pub runtime_script: PathBuf,
}

/// Writes the probe into `dir` (created if needed) and returns its paths.
pub fn install(dir: &Path) -> io::Result<ProbeInstall> {
    for (relative, contents) in PYTHON_ASSETS {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents)?;
    }
    let exec_wrapper = dir.join(EXEC_WRAPPER);
    set_executable(&exec_wrapper)?;
    Ok(ProbeInstall {
        dir: dir.to_owned(),
        exec_wrapper,
        runtime_script: dir.join("pyrometer_runtime.py"),
    })
}

fn set_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path)?.permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_an_executable_wrapper_and_the_whole_package() {
        let dir = std::env::temp_dir().join(format!("pyrometer-assets-{}", std::process::id()));
        let install = install(&dir).expect("install");
        assert!(install.dir.join("sitecustomize.py").is_file());
        assert!(install.dir.join("pyrometer_probe/__init__.py").is_file());
        assert!(install.runtime_script.is_file());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&install.exec_wrapper)
            .expect("wrapper")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

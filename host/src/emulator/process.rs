//! The environment's processes: starting the runtime and the extensions,
//! turning their output into `function` and `extension` telemetry, noticing
//! when they exit, ending them, and measuring the runtime's peak memory.
//!
//! Each process leads its own process group, so that ending it ends
//! whatever it started too (an exec wrapper's children, a handler's
//! subprocesses), as tearing down a Lambda sandbox does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::environment::EnvVars;
use super::events;
use super::state::Shared;
use crate::sources::procfs::descendants;

/// Longest output line kept; the rest of a longer line is cut (Lambda's limit is 256 KiB).
const MAX_LOG_LINE_BYTES: usize = 256 * 1024;

/// Which slot a process fills.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Runtime,
    /// Index into the environment's extension slots.
    Extension(usize),
}

/// How to start one process.
pub(crate) struct Launch {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: EnvVars,
    pub(crate) cwd: PathBuf,
    /// Prefix for echoed output lines.
    pub(crate) label: String,
}

/// Starts a process of environment `generation`; returns its pid.
pub(crate) fn launch(
    shared: &Arc<Shared>,
    launch: Launch,
    role: Role,
    generation: u64,
) -> std::io::Result<u32> {
    let mut command = tokio::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    let from_extension = matches!(role, Role::Extension(_));
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(
            shared.clone(),
            out,
            from_extension,
            launch.label.clone(),
        ));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(
            shared.clone(),
            err,
            from_extension,
            launch.label,
        ));
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let exit = match child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => format!("lost track of the process: {e}"),
        };
        {
            let mut state = shared.lock();
            if state.generation == generation {
                match role {
                    Role::Runtime => state.runtime.exit = Some(exit),
                    Role::Extension(i) => {
                        if let Some(slot) = state.extensions.get_mut(i) {
                            slot.exit = Some(exit);
                        }
                    }
                }
            }
        }
        shared.notify();
    });
    Ok(pid)
}

/// Emits each output line as one `function` or `extension` event.
async fn forward_lines(
    shared: Arc<Shared>,
    reader: impl AsyncRead + Unpin,
    from_extension: bool,
    label: String,
) {
    let mut reader = BufReader::new(reader);
    let mut line: Vec<u8> = Vec::new();
    while let Ok(buf) = reader.fill_buf().await {
        if buf.is_empty() {
            if !line.is_empty() {
                emit_line(&shared, from_extension, &label, &line);
            }
            break;
        }
        let room = MAX_LOG_LINE_BYTES.saturating_sub(line.len());
        match buf.iter().position(|&b| b == b'\n') {
            Some(end) => {
                line.extend_from_slice(&buf[..end.min(room)]);
                reader.consume(end + 1);
                emit_line(&shared, from_extension, &label, &line);
                line.clear();
            }
            None => {
                let len = buf.len();
                line.extend_from_slice(&buf[..len.min(room)]);
                reader.consume(len);
            }
        }
    }
}

fn emit_line(shared: &Shared, from_extension: bool, label: &str, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line).into_owned();
    if shared.config.echo_logs {
        eprintln!("[{label}] {text}");
    }
    let at = shared.clock.now();
    shared
        .hub
        .emit(events::log_line(&shared.clock, at, from_extension, text));
}

/// Sends `signal` to the process group led by `pid`.
pub(crate) fn signal_group(pid: u32, signal: i32) {
    // Never 0 or 1: kill(0) and kill(-1) would reach far more than our group.
    let Ok(pgid) = i32::try_from(pid) else { return };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a stale group id
    // only yields ESRCH.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

pub(crate) const SIGKILL: i32 = libc::SIGKILL;
pub(crate) const SIGTERM: i32 = libc::SIGTERM;

/// Sum of VmHWM over a process and its live descendants, KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    std::iter::once(pid)
        .chain(descendants(pid))
        .map(vm_hwm_kib)
        .sum()
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// True for a file Lambda would start from an extensions directory.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

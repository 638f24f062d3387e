//! The measured service as a child process: started with the probe in its
//! environment, sent the signals pyrometer receives, and its exit status
//! turned into ours.
//!
//! The child runs in its own process group, so a terminal's Ctrl-C reaches
//! it once (forwarded by us) rather than twice (from the terminal and from
//! us); servers such as uvicorn treat a second SIGINT as "exit now". If
//! pyrometer itself is killed outright, the kernel sends the child SIGTERM
//! (`PR_SET_PDEATHSIG`), so the service never outlives it unnoticed.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::thread::JoinHandle;

use signal_hook::consts::signal::{
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH,
};
use signal_hook::iterator::{Handle, Signals};

/// Signals passed on to the child: shutdown, reload, and gunicorn's
/// worker-count controls (TTIN/TTOU).
pub const FORWARDED_SIGNALS: &[i32] = &[
    SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU,
];

/// Where the probe is and where it sends: the environment a child needs.
#[derive(Debug, Clone)]
pub(super) struct ProbeEnv<'a> {
    /// The probe's directory (prepended to `PYTHONPATH`).
    pub(super) probe_dir: &'a Path,
    /// The probe socket (`PYROMETER_PROBE_SOCKET`).
    pub(super) socket: &'a Path,
    /// When the child is started, µs since the Unix epoch (`PYROMETER_EXEC_UNIX_US`).
    pub(super) exec_unix_us: u64,
}

/// A running child and the thread forwarding signals to it.
#[derive(Debug)]
pub(super) struct ServiceChild {
    child: Child,
    forwarder: Option<(Handle, JoinHandle<()>)>,
}

impl ServiceChild {
    /// Starts `command` (program and arguments) with the probe's environment;
    /// `on_exit` is called on a thread of its own the moment the child exits
    /// (its status is still to be collected with [`Self::wait`]).
    pub(super) fn spawn(
        command: &[OsString],
        probe: &ProbeEnv<'_>,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> io::Result<Self> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
        let mut python_path = OsString::from(probe.probe_dir);
        if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
            python_path.push(":");
            python_path.push(existing);
        }
        let mut command = Command::new(program);
        command
            .args(args)
            .env("PYTHONPATH", python_path)
            .env("PYROMETER_PROBE_SOCKET", probe.socket)
            .env("PYROMETER_EXEC_UNIX_US", probe.exec_unix_us.to_string())
            .process_group(0);
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours.
        // In its own process group the service would outlive a pyrometer that
        // is killed outright; the kernel sends it SIGTERM instead.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        let mut service = Self {
            child,
            forwarder: None,
        };
        service.forwarder = forward_signals(service.child.id()).ok();
        watch_exit(service.child.id(), on_exit)?;
        Ok(service)
    }

    /// The child's process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to exit and collects its status.
    pub(super) fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait()
    }

    /// Stops forwarding signals (after the child exited).
    pub(super) fn stop_forwarding(&mut self) {
        if let Some((handle, thread)) = self.forwarder.take() {
            handle.close();
            let _ = thread.join();
        }
    }
}

impl Drop for ServiceChild {
    fn drop(&mut self) {
        self.stop_forwarding();
    }
}

/// Calls `on_exit` once `pid`, our child, has exited, from a thread blocked
/// in `waitid(2)` with `WNOWAIT`: the child is left to be reaped by
/// [`ServiceChild::wait`], and nobody polls for the exit.
fn watch_exit(pid: u32, on_exit: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let id = libc::id_t::from(pid);
    std::thread::Builder::new()
        .name("pyrometer-wait".into())
        .spawn(move || {
            loop {
                // SAFETY: waitid(2) writes only into the siginfo_t we own.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                let done = unsafe {
                    libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                // Interrupted: wait again; any other outcome (exited, or an
                // error such as ECHILD) ends the watch.
                if done == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            on_exit();
        })?;
    Ok(())
}

/// Passes every [`FORWARDED_SIGNALS`] we receive to `pid`, until the handle closes.
fn forward_signals(pid: u32) -> io::Result<(Handle, JoinHandle<()>)> {
    let mut signals = Signals::new(FORWARDED_SIGNALS)?;
    let handle = signals.handle();
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    let thread = std::thread::Builder::new()
        .name("pyrometer-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, signal);
                }
            }
        })?;
    Ok((handle, thread))
}

/// The shell's convention for an exit status: the code, or 128 + the
/// signal that killed the process.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(SIGTERM)), 128 + 15);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}

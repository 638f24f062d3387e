//! The procfs sampler: resource use of the runtime process, read from
//! `/proc/<pid>/…` into [`ProcessSample`]s.
//!
//! A [`ProcfsSampler`] keeps `status`, `stat`, `io` and `net/dev` open and
//! re-reads them from offset 0 into one reusable buffer, so a sample costs a
//! handful of `pread`s and no allocation beyond the first. It samples one
//! process, or a process and all its descendants ([`ProcfsSampler::sample_tree`]),
//! which is what gunicorn-style pre-fork servers and Lambda's exec wrappers need.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::model::ProcessSample;

/// Bytes per `kB` in `/proc/<pid>/status`.
const KIB: u64 = 1024;

/// Samples one process through kept-open procfs files.
pub struct ProcfsSampler {
    pid: u32,
    status: File,
    stat: File,
    io: Option<File>,
    net_dev: Option<File>,
    buf: String,
    ticks_per_second: f64,
}

impl ProcfsSampler {
    /// Opens the procfs files of `pid`. Fails if the process does not exist;
    /// `io` and `net/dev` are optional (other users' processes hide `io`).
    pub fn open(pid: u32) -> io::Result<Self> {
        let dir = proc_dir(pid);
        Ok(Self {
            pid,
            status: File::open(dir.join("status"))?,
            stat: File::open(dir.join("stat"))?,
            io: File::open(dir.join("io")).ok(),
            net_dev: File::open(dir.join("net/dev")).ok(),
            buf: String::with_capacity(4096),
            ticks_per_second: clock_ticks_per_second(),
        })
    }

    /// The sampled process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the process's current figures. Fails once the process has exited.
    pub fn sample(&mut self) -> io::Result<ProcessSample> {
        let mut s = ProcessSample {
            unix_ms: unix_ms(),
            ..ProcessSample::default()
        };
        reread(&mut self.status, &mut self.buf)?;
        parse_status(&self.buf, &mut s);
        reread(&mut self.stat, &mut self.buf)?;
        let (user_ticks, system_ticks) = parse_stat_cpu(&self.buf).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/<pid>/stat")
        })?;
        s.cpu_user_ms = user_ticks as f64 * 1000.0 / self.ticks_per_second;
        s.cpu_system_ms = system_ticks as f64 * 1000.0 / self.ticks_per_second;
        if let Some(io_file) = self.io.as_mut()
            && reread(io_file, &mut self.buf).is_ok()
        {
            (s.read_bytes, s.write_bytes) = parse_io(&self.buf);
        }
        if let Some(net) = self.net_dev.as_mut()
            && reread(net, &mut self.buf).is_ok()
        {
            (s.net_rx_bytes, s.net_tx_bytes) = parse_net_dev(&self.buf);
        }
        s.open_fds = count_fds(self.pid);
        Ok(s)
    }

    /// Samples the process and all its live descendants, summing their
    /// figures (peak RSS is the sum of peaks, an upper bound of the tree's
    /// peak). Network bytes are per namespace, so they are taken once.
    pub fn sample_tree(&mut self) -> io::Result<ProcessSample> {
        let mut total = self.sample()?;
        for child in descendants(self.pid) {
            // A child may exit between listing and sampling: skip it.
            let Ok(mut sampler) = ProcfsSampler::open(child) else {
                continue;
            };
            sampler.net_dev = None;
            if let Ok(c) = sampler.sample() {
                add_process(&mut total, &c);
            }
        }
        Ok(total)
    }
}

fn add_process(total: &mut ProcessSample, c: &ProcessSample) {
    total.rss_bytes += c.rss_bytes;
    total.peak_rss_bytes += c.peak_rss_bytes;
    total.swap_bytes += c.swap_bytes;
    total.virtual_bytes += c.virtual_bytes;
    total.cpu_user_ms += c.cpu_user_ms;
    total.cpu_system_ms += c.cpu_system_ms;
    total.threads += c.threads;
    total.open_fds += c.open_fds;
    total.voluntary_ctxt_switches += c.voluntary_ctxt_switches;
    total.involuntary_ctxt_switches += c.involuntary_ctxt_switches;
    total.read_bytes += c.read_bytes;
    total.write_bytes += c.write_bytes;
}

/// Every live descendant of `pid` (children, grandchildren, …), from the
/// `children` lists of its threads.
pub fn descendants(pid: u32) -> Vec<u32> {
    descendants_with_parents(pid)
        .into_iter()
        .map(|(child, _)| child)
        .collect()
}

/// Every live descendant of `pid` with its parent: `(child, parent)` pairs,
/// parents listed before their children.
pub fn descendants_with_parents(pid: u32) -> Vec<(u32, u32)> {
    let mut found: Vec<(u32, u32)> = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(proc_dir(p).join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in text
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if !found.iter().any(|(c, _)| *c == child) {
                    found.push((child, p));
                    queue.push(child);
                }
            }
        }
    }
    found
}

fn proc_dir(pid: u32) -> PathBuf {
    PathBuf::from("/proc").join(pid.to_string())
}

fn reread(file: &mut File, buf: &mut String) -> io::Result<()> {
    buf.clear();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(buf)?;
    Ok(())
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn count_fds(pid: u32) -> u64 {
    std::fs::read_dir(proc_dir(pid).join("fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Fills memory, thread and context-switch figures from `/proc/<pid>/status`.
fn parse_status(text: &str, s: &mut ProcessSample) {
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || {
            value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match key {
            "VmRSS" => s.rss_bytes = number() * KIB,
            "VmHWM" => s.peak_rss_bytes = number() * KIB,
            "VmSwap" => s.swap_bytes = number() * KIB,
            "VmSize" => s.virtual_bytes = number() * KIB,
            "Threads" => s.threads = number(),
            "voluntary_ctxt_switches" => s.voluntary_ctxt_switches = number(),
            "nonvoluntary_ctxt_switches" => s.involuntary_ctxt_switches = number(),
            _ => {}
        }
    }
}

/// `utime` and `stime` (fields 14 and 15) from `/proc/<pid>/stat` (or a
/// thread's `/proc/<pid>/task/<tid>/stat`), in clock ticks; None if the text
/// is not such a line. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`. Public for the
/// service bench, which splits a tree's CPU between user and kernel.
pub fn parse_stat_cpu(text: &str) -> Option<(u64, u64)> {
    let after_comm = &text[text.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    // after_comm starts at field 3 (state): utime is the 12th field from there.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// `read_bytes` and `write_bytes` from `/proc/<pid>/io`.
fn parse_io(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("read_bytes:"), field("write_bytes:"))
}

/// Received and sent bytes over all interfaces but loopback, from `net/dev`.
fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let c: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        if c.len() >= 9 {
            rx += c[0];
            tx += c[8];
        }
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields_in_bytes() {
        let text = "Name:\tpython3\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nVmSwap:\t 4 kB\nThreads:\t7\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        let mut s = ProcessSample::default();
        parse_status(text, &mut s);
        assert_eq!(
            (s.rss_bytes, s.peak_rss_bytes, s.swap_bytes),
            (1 << 20, 2 << 20, 4096)
        );
        assert_eq!(
            (
                s.threads,
                s.voluntary_ctxt_switches,
                s.involuntary_ctxt_switches
            ),
            (7, 12, 3)
        );
    }

    #[test]
    fn stat_cpu_survives_parentheses_in_the_command() {
        let text = "42 (my (weird) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat_cpu(text), Some((250, 31)));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn net_dev_skips_loopback() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 900 9 0 0 0 0 0 0 900 9 0 0 0 0 0 0\n  eth0: 100 1 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), (100, 50));
    }

    #[test]
    fn samples_a_real_process_and_sees_cpu_and_memory_move() {
        let mut sampler = ProcfsSampler::open(std::process::id()).expect("own procfs");
        let before = sampler.sample().expect("sample");
        // Burn CPU and touch memory so both counters must move.
        let mut v: Vec<u64> = Vec::new();
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(60) {
            v.extend(0..10_000);
        }
        std::hint::black_box(&v);
        let after = sampler.sample().expect("sample");
        assert!(
            after.cpu_user_ms + after.cpu_system_ms > before.cpu_user_ms + before.cpu_system_ms
        );
        assert!(after.peak_rss_bytes >= before.peak_rss_bytes);
        assert!(after.rss_bytes > 0 && after.threads >= 1 && after.open_fds >= 3);
    }

    #[test]
    fn tree_sample_includes_descendants_and_a_dead_pid_fails() {
        // A shell (one thread) whose child `sleep` (one thread) is the tree's only descendant.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("spawn sh");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while descendants(shell.id()).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "sh never started its child"
            );
            std::thread::yield_now();
        }
        let mut sampler = ProcfsSampler::open(shell.id()).expect("sh procfs");
        assert_eq!(sampler.sample().expect("sample").threads, 1);
        assert_eq!(sampler.sample_tree().expect("tree").threads, 2);
        let grandchild = descendants(shell.id())[0];
        let _ = std::process::Command::new("kill")
            .arg(grandchild.to_string())
            .status();
        shell.kill().expect("kill");
        shell.wait().expect("reap");
        assert!(
            sampler.sample().is_err(),
            "an exited process cannot be sampled"
        );
    }
}

//! The function's runtime process, sampled through procfs at INVOKE and when
//! the invocation completes, so its RSS, CPU, open fds and threads reach the
//! collector from Lambda as they do from `pyrometer lambda`.
//!
//! Its pid comes from the probe: every record's header names the sending
//! process, and the one that sent the init record is the runtime (an
//! invocation record names it when the init record was lost). Without the
//! probe there is no pid and nothing is sampled. Fail-open: a process whose
//! `/proc` cannot be read is one fault, and it is not tried again until the
//! probe names another process.

use pyrometer::model::ProcessSample;
use pyrometer::sources::probe::{ProbeMessage, ProbeRecord};
use pyrometer::sources::procfs::ProcfsSampler;

use crate::faults::Faults;

/// The runtime process, once the probe has named it.
#[derive(Default)]
pub(crate) struct RuntimeProcess {
    pid: Option<u32>,
    /// Kept-open procfs files of `pid`, opened at the first sample.
    sampler: Option<ProcfsSampler>,
    /// `/proc/<pid>` could not be read: `pid` is not sampled again.
    unreadable: bool,
}

impl RuntimeProcess {
    /// Learns the runtime's pid from a probe message's header.
    pub(crate) fn observe(&mut self, message: &ProbeMessage) {
        let names_runtime = match message.record {
            ProbeRecord::Init(_) => true,
            ProbeRecord::Invocation(_) => self.pid.is_none(),
            _ => false,
        };
        if names_runtime && self.pid != Some(message.pid) {
            *self = Self {
                pid: Some(message.pid),
                ..Self::default()
            };
        }
    }

    /// The runtime process and its children now, when there is one to read.
    pub(crate) fn sample(&mut self, faults: &mut Faults) -> Option<ProcessSample> {
        let pid = self.pid.filter(|_| !self.unreadable)?;
        let sampled = match self.sampler.as_mut() {
            Some(sampler) => sampler.sample_tree(),
            None => ProcfsSampler::open(pid)
                .and_then(|sampler| self.sampler.insert(sampler).sample_tree()),
        };
        sampled
            .map_err(|e| {
                self.unreadable = true;
                self.sampler = None;
                faults.report("procfs", format!("cannot sample /proc/{pid}: {e}"));
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use pyrometer::model::PythonInit;
    use pyrometer::sources::probe::{ProbeExit, ProbeInit};

    use super::*;

    fn message(pid: u32, record: ProbeRecord) -> ProbeMessage {
        ProbeMessage {
            pid,
            seq: 1,
            dropped: 0,
            record,
        }
    }

    fn init(pid: u32) -> ProbeMessage {
        message(
            pid,
            ProbeRecord::Init(ProbeInit {
                init: PythonInit::default(),
                profile_id: 1,
                profile_modules: 0,
            }),
        )
    }

    #[test]
    fn the_process_that_sent_the_init_record_is_sampled() {
        let mut faults = Faults::default();
        let mut runtime = RuntimeProcess::default();
        assert!(runtime.sample(&mut faults).is_none(), "no probe, no pid");
        let exit = ProbeExit {
            invocations: 0,
            exit_unix_us: 0,
            unsent: 0,
        };
        runtime.observe(&message(std::process::id(), ProbeRecord::Exit(exit)));
        assert!(
            runtime.sample(&mut faults).is_none(),
            "an exit record names no runtime"
        );
        runtime.observe(&init(std::process::id()));
        let sample = runtime.sample(&mut faults).expect("this process");
        assert!(sample.rss_bytes > 0 && sample.threads >= 1 && sample.open_fds >= 1);
        assert!(runtime.sample(&mut faults).is_some(), "the files stay open");
        assert!(!faults.any());
    }

    #[test]
    fn an_unreadable_process_is_one_fault_and_not_tried_again() {
        let mut faults = Faults::default();
        let mut runtime = RuntimeProcess::default();
        // Above the kernel's pid_max (4194304 at most): no such process.
        runtime.observe(&init(u32::MAX - 1));
        assert!(runtime.sample(&mut faults).is_none());
        assert!(runtime.sample(&mut faults).is_none());
        assert_eq!(faults.summary(), "procfs=1");
        runtime.observe(&init(std::process::id()));
        assert!(
            runtime.sample(&mut faults).is_some(),
            "a new runtime is sampled"
        );
    }
}

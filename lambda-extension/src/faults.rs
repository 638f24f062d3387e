//! Fail-open bookkeeping: every internal fault is counted by kind and logged
//! the first time its kind occurs, so a dead gateway or a stream of probe
//! garbage costs one log line, not one per invocation.

use std::collections::BTreeMap;
use std::fmt::Display;

/// Faults seen so far, by kind.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    counts: BTreeMap<&'static str, u64>,
}

impl Faults {
    /// Counts a fault of `kind`; logs it if it is the first of its kind.
    pub(crate) fn report(&mut self, kind: &'static str, detail: impl Display) {
        let count = self.counts.entry(kind).or_default();
        *count += 1;
        if *count == 1 {
            tracing::warn!(
                kind,
                "{detail} (pyrometer keeps going; further {kind} faults are only counted)"
            );
        }
    }

    /// Counts the exporters that could not be built from the configuration
    /// (at setup, and again when a SnapStart environment re-targets them).
    pub(crate) fn exporters_left_out<E: Display>(&mut self, errors: impl IntoIterator<Item = E>) {
        for e in errors {
            self.report("config", format!("exporter left out: {e}"));
        }
    }

    /// Whether any fault was seen.
    pub(crate) fn any(&self) -> bool {
        !self.counts.is_empty()
    }

    /// Every kind and its count, for the final log line.
    pub(crate) fn summary(&self) -> String {
        self.counts
            .iter()
            .map(|(kind, n)| format!("{kind}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_counted_by_kind() {
        let mut faults = Faults::default();
        assert!(!faults.any());
        for _ in 0..3 {
            faults.report("export", "gateway down");
        }
        faults.report("probe", "bad datagram");
        assert_eq!(faults.summary(), "export=3 probe=1");
    }
}

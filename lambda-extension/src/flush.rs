//! When to flush: the configured [`FlushStrategy`] applied to the times of
//! past flushes and invocations. A pure decision, fed `Instant`s, so the
//! strategies are tested without waiting.

use std::time::{Duration, Instant};

use pyrometer::config::FlushStrategy;

/// The flush decision and what it remembers.
#[derive(Debug)]
pub(crate) struct FlushControl {
    strategy: FlushStrategy,
    last_flush: Option<Instant>,
    last_invocation: Option<Instant>,
}

impl FlushControl {
    /// Nothing flushed or invoked yet.
    pub(crate) fn new(strategy: FlushStrategy) -> Self {
        Self {
            strategy,
            last_flush: None,
            last_invocation: None,
        }
    }

    /// Notes an invocation's start at `now`; returns the gap since the previous one.
    pub(crate) fn invoked(&mut self, now: Instant) -> Option<Duration> {
        let gap = self
            .last_invocation
            .map(|t| now.saturating_duration_since(t));
        self.last_invocation = Some(now);
        gap
    }

    /// Whether to flush at the end of an invocation whose start was `gap`
    /// after the previous one's.
    pub(crate) fn due(&self, now: Instant, gap: Option<Duration>) -> bool {
        let period_passed = |period| {
            self.last_flush
                .is_none_or(|t| now.saturating_duration_since(t) >= period)
        };
        match self.strategy {
            FlushStrategy::End => true,
            FlushStrategy::Periodic(period) => period_passed(period),
            // Sparse traffic: the environment may be frozen after any
            // invocation, so flush each one; dense traffic: once per period.
            FlushStrategy::Adaptive(period) => {
                gap.is_none_or(|g| g >= period) || period_passed(period)
            }
        }
    }

    /// Notes a flush at `now`.
    pub(crate) fn flushed(&mut self, now: Instant) {
        self.last_flush = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(10);

    /// Invocations at `starts_s` (seconds); which of them flush.
    fn flushes(strategy: FlushStrategy, starts_s: &[f64]) -> Vec<bool> {
        let t0 = Instant::now();
        let mut control = FlushControl::new(strategy);
        starts_s
            .iter()
            .map(|s| {
                let now = t0 + Duration::from_secs_f64(*s);
                let gap = control.invoked(now);
                let due = control.due(now, gap);
                if due {
                    control.flushed(now);
                }
                due
            })
            .collect()
    }

    #[test]
    fn end_flushes_every_invocation() {
        assert_eq!(flushes(FlushStrategy::End, &[0.0, 0.1, 0.2]), [true; 3]);
    }

    #[test]
    fn periodic_flushes_once_per_period() {
        let starts = [0.0, 1.0, 9.0, 10.5, 11.0, 25.0];
        assert_eq!(
            flushes(FlushStrategy::Periodic(PERIOD), &starts),
            [true, false, false, true, false, true]
        );
    }

    #[test]
    fn adaptive_flushes_sparse_invocations_and_dense_ones_periodically() {
        let starts = [0.0, 30.0, 31.0, 32.0, 41.0, 42.0, 60.0];
        assert_eq!(
            flushes(FlushStrategy::Adaptive(PERIOD), &starts),
            [true, true, false, false, true, false, true]
        );
    }
}

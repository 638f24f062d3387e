//! Worker restarts, seen from the process tree: a child process that exited
//! and was replaced by a new child of the same parent, which is what a
//! pre-fork server (gunicorn, uvicorn `--workers`) does when a worker dies.
//!
//! Snapshots of the tree (`(child, parent)` pairs from
//! [`crate::sources::procfs::descendants_with_parents`]) enter through
//! [`WorkerTracker::observe`]; restarts leave as the count it returns. A
//! death waits for its replacement for a few snapshots (a server may take a
//! moment to fork the new worker); the processes that exit when the whole
//! service stops are never replaced, so they are not counted.

use std::collections::HashMap;

/// Snapshots a death waits for a replacement before it is forgotten.
const REPLACEMENT_WINDOW: u32 = 10;

/// Counts replaced child processes across process-tree snapshots.
#[derive(Debug, Default)]
pub struct WorkerTracker {
    /// The last snapshot: child → parent.
    live: HashMap<u32, u32>,
    /// Deaths not yet replaced: (parent, snapshots left to wait).
    unreplaced: Vec<(u32, u32)>,
    restarts: u64,
}

impl WorkerTracker {
    /// A tracker that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the current tree and returns how many restarts it revealed.
    pub fn observe(&mut self, tree: &[(u32, u32)]) -> u64 {
        let now: HashMap<u32, u32> = tree.iter().copied().collect();
        for (child, parent) in &self.live {
            if !now.contains_key(child) {
                self.unreplaced.push((*parent, REPLACEMENT_WINDOW));
            }
        }
        let mut found = 0;
        for (child, parent) in &now {
            if self.live.contains_key(child) {
                continue;
            }
            if let Some(i) = self.unreplaced.iter().position(|(p, _)| p == parent) {
                self.unreplaced.swap_remove(i);
                found += 1;
            }
        }
        for (_, left) in &mut self.unreplaced {
            *left = left.saturating_sub(1);
        }
        self.unreplaced.retain(|(_, left)| *left > 0);
        self.live = now;
        self.restarts += found;
        found
    }

    /// Restarts seen so far.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_replaced_by_its_parent_is_one_restart() {
        let mut t = WorkerTracker::new();
        assert_eq!(t.observe(&[(11, 10), (12, 10)]), 0);
        assert_eq!(t.observe(&[(12, 10), (13, 10)]), 1);
        assert_eq!(t.restarts(), 1);
    }

    #[test]
    fn a_replacement_one_snapshot_later_still_counts() {
        let mut t = WorkerTracker::new();
        t.observe(&[(11, 10), (12, 10)]);
        assert_eq!(t.observe(&[(12, 10)]), 0);
        assert_eq!(t.observe(&[(12, 10), (14, 10)]), 1);
    }

    #[test]
    fn workers_that_stop_with_the_service_are_not_restarts() {
        let mut t = WorkerTracker::new();
        t.observe(&[(11, 10), (12, 10)]);
        for _ in 0..20 {
            t.observe(&[]);
        }
        assert_eq!(t.restarts(), 0);
    }

    #[test]
    fn a_new_child_of_another_parent_is_not_a_replacement() {
        let mut t = WorkerTracker::new();
        t.observe(&[(11, 10), (20, 1)]);
        assert_eq!(t.observe(&[(20, 1), (21, 20)]), 0);
    }

    #[test]
    fn growth_without_deaths_is_not_a_restart() {
        let mut t = WorkerTracker::new();
        t.observe(&[(11, 10)]);
        assert_eq!(t.observe(&[(11, 10), (12, 10), (13, 10)]), 0);
    }

    #[test]
    fn a_death_forgotten_after_the_window_is_not_matched() {
        let mut t = WorkerTracker::new();
        t.observe(&[(11, 10)]);
        for _ in 0..REPLACEMENT_WINDOW + 1 {
            t.observe(&[]);
        }
        assert_eq!(t.observe(&[(12, 10)]), 0);
    }
}

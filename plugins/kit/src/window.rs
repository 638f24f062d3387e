//! State that plugins keep between batches: bounded windows, one per function.
//!
//! pyrometer reuses one warm plugin instance across calls, so a plugin can keep
//! history in memory. That memory must stay bounded however long the
//! environment lives: a [`SlidingWindow`] holds the last `capacity` samples and
//! [`PerFunction`] holds the state of at most [`PerFunction::MAX_FUNCTIONS`]
//! functions (in Lambda there is exactly one; outside it, a plugin may see several).

use std::collections::VecDeque;

/// The last `capacity` samples, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SlidingWindow<T> {
    samples: VecDeque<T>,
    capacity: usize,
}

impl<T> SlidingWindow<T> {
    /// An empty window that keeps at most `capacity` samples (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends a sample, dropping the oldest when the window is full.
    pub fn push(&mut self, sample: T) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// How many samples the window holds.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The most samples the window keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.samples.iter()
    }

    /// The newest `n` samples (fewer if the window holds fewer), oldest first.
    pub fn newest(&self, n: usize) -> impl Iterator<Item = &T> {
        self.samples
            .iter()
            .skip(self.samples.len().saturating_sub(n))
    }
}

/// One `T` per function name, created on first use; the least recently used is
/// dropped when more than [`Self::MAX_FUNCTIONS`] functions have been seen.
#[derive(Debug, Clone)]
pub struct PerFunction<T> {
    /// Most recently used last.
    entries: Vec<(String, T)>,
}

impl<T> Default for PerFunction<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T> PerFunction<T> {
    /// The most functions whose state is kept at once.
    pub const MAX_FUNCTIONS: usize = 32;

    /// The state of `function`, created by `init` if it has none.
    pub fn entry(&mut self, function: &str, init: impl FnOnce() -> T) -> &mut T {
        let index = match self.entries.iter().position(|(name, _)| name == function) {
            Some(index) => {
                // Move to the back: most recently used.
                let entry = self.entries.remove(index);
                self.entries.push(entry);
                self.entries.len() - 1
            }
            None => {
                if self.entries.len() == Self::MAX_FUNCTIONS {
                    self.entries.remove(0);
                }
                self.entries.push((function.to_owned(), init()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[index].1
    }

    /// How many functions have state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no function has state.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_drops_the_oldest() {
        let mut window = SlidingWindow::new(3);
        for i in 0..5 {
            window.push(i);
        }
        assert_eq!(window.iter().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(window.newest(2).copied().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(window.newest(10).count(), 3);
        window.clear();
        assert!(window.is_empty());
        assert_eq!(SlidingWindow::<u8>::new(0).capacity(), 1);
    }

    #[test]
    fn per_function_state_is_separate_and_bounded() {
        let mut state: PerFunction<u32> = PerFunction::default();
        *state.entry("a", || 0) += 1;
        *state.entry("a", || 0) += 1;
        *state.entry("b", || 10) += 1;
        assert_eq!(*state.entry("a", || 0), 2);
        assert_eq!(*state.entry("b", || 0), 11);
        for i in 0..PerFunction::<u32>::MAX_FUNCTIONS {
            state.entry(&format!("f{i}"), || 0);
        }
        assert_eq!(state.len(), PerFunction::<u32>::MAX_FUNCTIONS);
        // "a" and "b" were the least recently used and are gone.
        assert_eq!(*state.entry("a", || 99), 99);
    }
}

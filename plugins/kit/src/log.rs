//! The plugin side of the host's `log` import, as a trait so logic stays testable.
//!
//! In a component, [`export_analyzer!`](crate::export_analyzer) passes a logger
//! that calls the host, which bounds lines per call and prefixes the plugin's
//! name. In native tests, [`MemoryLog`] keeps the lines for assertions. Log
//! sparingly: one debug line per batch is the norm, warnings for input that was
//! skipped.

/// Log levels, as the WIT `host.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for plugin authors.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// Somewhere to write log lines.
pub trait Log {
    /// Writes one line.
    fn log(&mut self, level: Level, message: &str);

    /// Writes one debug line.
    fn debug(&mut self, message: &str) {
        self.log(Level::Debug, message);
    }

    /// Writes one warning line.
    fn warn(&mut self, message: &str) {
        self.log(Level::Warn, message);
    }
}

/// A [`Log`] that keeps every line in memory, for tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryLog {
    /// The lines written so far, oldest first.
    pub lines: Vec<(Level, String)>,
}

impl Log for MemoryLog {
    fn log(&mut self, level: Level, message: &str) {
        self.lines.push((level, message.to_owned()));
    }
}

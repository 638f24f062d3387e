//! The plugins, loaded on a thread of their own: engine start-up and one
//! `.cwasm` deserialisation per plugin (about 1 ms each) then happen
//! alongside the runtime's own init instead of before the extension's first
//! `next`, which Lambda's init phase waits for. The session takes the set the
//! first time it needs it — after the first invocation completed — and
//! waits for the loader then if it is not done.
//!
//! With `PYROMETER_FAIL_INIT_ON_ERROR=1` the plugins load before `next`
//! (a plugin that fails must be able to fail the init).

use std::thread::JoinHandle;

use pyrometer::plugins::{PluginSet, PluginSpec};

use crate::faults::Faults;

/// What loading produced: the set (`None` when the engine could not start)
/// and one message per plugin that did not load.
type Loaded = (Option<PluginSet>, Vec<String>);

/// The plugins, loading or loaded.
pub(crate) enum Plugins {
    /// The loader thread, until the set is first needed.
    Loading(JoinHandle<Loaded>),
    /// The loaded set (boxed: it dwarfs a thread handle); `None` when none
    /// are configured (no engine is built) or none could be loaded.
    Ready(Option<Box<PluginSet>>),
}

impl Plugins {
    /// Starts loading `specs` on a thread (at once, on this one, if the
    /// thread cannot be started); nothing to load gives no engine at all.
    pub(crate) fn start(specs: &[PluginSpec], faults: &mut Faults) -> Self {
        if specs.is_empty() {
            return Self::Ready(None);
        }
        let for_loader = specs.to_vec();
        let spawned = std::thread::Builder::new()
            .name("pyrometer-plugins".into())
            .spawn(move || load(&for_loader));
        match spawned {
            Ok(thread) => Self::Loading(thread),
            Err(_) => Self::now(specs, faults),
        }
    }

    /// Loads `specs` on this thread, reporting what does not load.
    pub(crate) fn now(specs: &[PluginSpec], faults: &mut Faults) -> Self {
        if specs.is_empty() {
            return Self::Ready(None);
        }
        let (set, errors) = load(specs);
        report(errors, faults);
        Self::Ready(set.map(Box::new))
    }

    /// The set, once loaded (waiting for the loader the first time);
    /// problems met while loading are reported then.
    pub(crate) fn get(&mut self, faults: &mut Faults) -> Option<&mut PluginSet> {
        if matches!(self, Self::Loading(_))
            && let Self::Loading(thread) = std::mem::replace(self, Self::Ready(None))
        {
            match thread.join() {
                Ok((set, errors)) => {
                    report(errors, faults);
                    *self = Self::Ready(set.map(Box::new));
                }
                Err(_) => faults.report("plugin", "the plugin loader panicked"),
            }
        }
        match self {
            Self::Ready(set) => set.as_deref_mut(),
            Self::Loading(_) => None,
        }
    }
}

/// Loads every plugin of `specs` that loads.
fn load(specs: &[PluginSpec]) -> Loaded {
    let mut set = match PluginSet::new() {
        Ok(set) => set,
        Err(e) => return (None, vec![format!("cannot start the plugin engine: {e:#}")]),
    };
    let errors = specs
        .iter()
        .filter_map(|spec| {
            set.add(spec)
                .err()
                .map(|e| format!("{}: {e}", spec.path.display()))
        })
        .collect();
    (Some(set), errors)
}

fn report(errors: Vec<String>, faults: &mut Faults) {
    for e in errors {
        faults.report("plugin", e);
    }
}

//! The batch a plugin analyzes: a plain-Rust mirror of the WIT `batch`.
//!
//! [`export_analyzer!`](crate::export_analyzer) moves the lists wit-bindgen
//! lifted into these types (no copy of the columns) and calls
//! [`Batch::validate`] before the plugin sees them, so every plugin may rely on
//! columns of equal length and parent indices that point at earlier modules.
//! Tests build batches directly, which is why the fields are public.

/// How one invocation ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Status {
    /// The handler returned a result.
    #[default]
    Success,
    /// The handler raised (or the runtime reported an error response).
    Error,
    /// The invocation ran past its configured timeout.
    Timeout,
    /// The runtime ran out of memory.
    OutOfMemory,
    /// The runtime process crashed or failed.
    Failure,
}

impl Status {
    /// The WIT / JSON spelling (`out-of-memory`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::OutOfMemory => "out-of-memory",
            Self::Failure => "failure",
        }
    }
}

/// Where an imported module's code came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Compiled into the interpreter, or frozen.
    Builtin,
    /// The standard library.
    #[default]
    Stdlib,
    /// A third-party package from site-packages.
    SitePackages,
    /// A Lambda layer (under `/opt`).
    Layer,
    /// The function's own code.
    FunctionCode,
}

impl Origin {
    /// The WIT / JSON spelling (`site-packages`), also used as a label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Stdlib => "stdlib",
            Self::SitePackages => "site-packages",
            Self::Layer => "layer",
            Self::FunctionCode => "function-code",
        }
    }
}

/// The function being measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionInfo {
    /// Function name.
    pub name: String,
    /// Function version.
    pub version: String,
    /// Runtime identifier, such as `python3.12`.
    pub runtime: String,
    /// Configured memory in MB (0 when unknown).
    pub memory_size_mb: u32,
}

/// The invocations of a batch as columns; element `i` of every column describes
/// invocation `i`. A figure that was not measured is NaN.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)] // Each column is documented in wit/plugin.wit.
pub struct Invocations {
    pub request_id: Vec<String>,
    pub start_unix_ms: Vec<f64>,
    pub cold_start: Vec<bool>,
    pub status: Vec<Status>,
    pub duration_ms: Vec<f64>,
    pub billed_duration_ms: Vec<f64>,
    pub init_duration_ms: Vec<f64>,
    pub max_memory_used_mb: Vec<f64>,
    pub memory_size_mb: Vec<f64>,
    pub rss_bytes: Vec<f64>,
    pub cpu_user_ms: Vec<f64>,
    pub cpu_system_ms: Vec<f64>,
    pub gc_collections: Vec<u32>,
    pub gc_pause_ms: Vec<f64>,
    pub allocated_blocks: Vec<f64>,
    pub post_runtime_ms: Vec<f64>,
}

impl Invocations {
    /// The number of invocations: the length of `request_id`, which
    /// [`Batch::validate`] has checked every other column matches.
    pub fn len(&self) -> usize {
        self.request_id.len()
    }

    /// Whether there are no invocations.
    pub fn is_empty(&self) -> bool {
        self.request_id.is_empty()
    }

    /// The length shared by every column, or an error naming the first column
    /// whose length differs.
    pub fn checked_len(&self) -> Result<usize, String> {
        let expected = self.request_id.len();
        let columns = [
            ("start-unix-ms", self.start_unix_ms.len()),
            ("cold-start", self.cold_start.len()),
            ("status", self.status.len()),
            ("duration-ms", self.duration_ms.len()),
            ("billed-duration-ms", self.billed_duration_ms.len()),
            ("init-duration-ms", self.init_duration_ms.len()),
            ("max-memory-used-mb", self.max_memory_used_mb.len()),
            ("memory-size-mb", self.memory_size_mb.len()),
            ("rss-bytes", self.rss_bytes.len()),
            ("cpu-user-ms", self.cpu_user_ms.len()),
            ("cpu-system-ms", self.cpu_system_ms.len()),
            ("gc-collections", self.gc_collections.len()),
            ("gc-pause-ms", self.gc_pause_ms.len()),
            ("allocated-blocks", self.allocated_blocks.len()),
            ("post-runtime-ms", self.post_runtime_ms.len()),
        ];
        match columns.iter().find(|(_, len)| *len != expected) {
            None => Ok(expected),
            Some((name, len)) => Err(format!(
                "malformed batch: invocations column '{name}' has {len} elements, \
                 but 'request-id' has {expected}"
            )),
        }
    }
}

/// The import tree of one cold start as columns, modules in the order their
/// imports began.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)] // Each column is documented in wit/plugin.wit.
pub struct ImportProfile {
    pub module: Vec<String>,
    pub parent: Vec<i32>,
    pub self_us: Vec<u64>,
    pub cumulative_us: Vec<u64>,
    pub origin: Vec<Origin>,
}

impl ImportProfile {
    /// The number of modules.
    pub fn len(&self) -> usize {
        self.module.len()
    }

    /// Whether the profile holds no module.
    pub fn is_empty(&self) -> bool {
        self.module.is_empty()
    }

    /// The parent of module `i`, `None` at top level.
    pub fn parent_of(&self, i: usize) -> Option<usize> {
        usize::try_from(self.parent[i]).ok()
    }

    /// Checks equal column lengths and that each parent is -1 or an earlier module.
    pub fn validate(&self) -> Result<(), String> {
        let expected = self.module.len();
        let columns = [
            ("parent", self.parent.len()),
            ("self-us", self.self_us.len()),
            ("cumulative-us", self.cumulative_us.len()),
            ("origin", self.origin.len()),
        ];
        if let Some((name, len)) = columns.iter().find(|(_, len)| *len != expected) {
            return Err(format!(
                "malformed batch: imports column '{name}' has {len} elements, \
                 but 'module' has {expected}"
            ));
        }
        for (i, &parent) in self.parent.iter().enumerate() {
            let points_back = usize::try_from(parent).is_ok_and(|p| p < i);
            if parent != -1 && !points_back {
                return Err(format!(
                    "malformed batch: module {i} ('{}') has parent {parent}, \
                     expected -1 or the index of an earlier module",
                    self.module[i]
                ));
            }
        }
        Ok(())
    }
}

/// One unit of work: the invocations since the last call, and the import
/// profile if a cold start happened among them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The function the invocations belong to.
    pub function: FunctionInfo,
    /// The invocations, as columns, oldest first.
    pub invocations: Invocations,
    /// The import profile of the cold start in this batch, if there was one.
    pub imports: Option<ImportProfile>,
}

impl Batch {
    /// Checks the invariants the plugins rely on (see the module docs).
    pub fn validate(&self) -> Result<(), String> {
        self.invocations.checked_len()?;
        match &self.imports {
            Some(imports) => imports.validate(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocations(n: usize) -> Invocations {
        Invocations {
            request_id: vec![String::new(); n],
            start_unix_ms: vec![0.0; n],
            cold_start: vec![false; n],
            status: vec![Status::Success; n],
            duration_ms: vec![0.0; n],
            billed_duration_ms: vec![0.0; n],
            init_duration_ms: vec![0.0; n],
            max_memory_used_mb: vec![0.0; n],
            memory_size_mb: vec![0.0; n],
            rss_bytes: vec![0.0; n],
            cpu_user_ms: vec![0.0; n],
            cpu_system_ms: vec![0.0; n],
            gc_collections: vec![0; n],
            gc_pause_ms: vec![0.0; n],
            allocated_blocks: vec![0.0; n],
            post_runtime_ms: vec![0.0; n],
        }
    }

    #[test]
    fn equal_columns_validate() {
        let batch = Batch {
            invocations: invocations(3),
            ..Batch::default()
        };
        assert_eq!(batch.validate(), Ok(()));
        assert_eq!(batch.invocations.checked_len(), Ok(3));
    }

    #[test]
    fn a_short_column_is_named() {
        let mut batch = Batch {
            invocations: invocations(3),
            ..Batch::default()
        };
        batch.invocations.rss_bytes.pop();
        let err = batch.validate().expect_err("short column");
        assert!(err.contains("'rss-bytes' has 2 elements"), "{err}");
    }

    #[test]
    fn import_parents_must_point_back() {
        let mut imports = ImportProfile {
            module: vec!["a".into(), "b".into()],
            parent: vec![-1, 0],
            self_us: vec![1, 2],
            cumulative_us: vec![3, 2],
            origin: vec![Origin::Stdlib; 2],
        };
        assert_eq!(imports.validate(), Ok(()));
        assert_eq!(imports.parent_of(0), None);
        assert_eq!(imports.parent_of(1), Some(0));
        imports.parent[1] = 1;
        assert!(imports.validate().is_err());
        imports.parent[1] = -2;
        assert!(imports.validate().is_err());
        imports.parent[1] = 0;
        imports.origin.pop();
        assert!(imports.validate().expect_err("short").contains("'origin'"));
    }
}

//! Turning files into components: `.wasm` (compiled here) or `.cwasm`
//! (precompiled by `pyrometer plugin compile`, deserialized here), with the
//! capability policy checked before anything runs.
//!
//! A `.cwasm` is native code: deserializing it is `unsafe` because wasmtime
//! trusts it. Users hand in `.wasm`; `.cwasm` files are produced by the layer
//! build from those, with the same engine settings, and loaded only from
//! there. wasmtime still checks a `.cwasm`'s header, version and engine
//! settings, so a corrupt, foreign or stale one is refused with an error.
//!
//! Without the `compiler` feature (the lean Lambda extension) a `.wasm` is
//! refused with [`LoadError::NoCompiler`], which says how to precompile it.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
use wasmtime::{Engine, Precompiled};

use super::error::{LoadError, first_line};

/// The interfaces a plugin may import, by prefix (`namespace:package/`). Any
/// other import either has no implementation in the linker (it fails to link)
/// or is denied here; sockets are denied explicitly because wasmtime-wasi links
/// them together with the rest of WASI.
const GRANTED_IMPORT_PREFIXES: &[&str] = &[
    "pyrometer:plugin/",
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// What a component imports and exports, as `pyrometer plugin check` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSummary {
    /// Imported instance or function names, e.g. `wasi:io/streams@0.2.6`.
    pub imports: Vec<String>,
    /// Exported names, e.g. `analyze`.
    pub exports: Vec<String>,
}

/// Reads and loads a plugin file, compiling a `.wasm` or deserializing a
/// `.cwasm` (chosen by content, not by file name).
pub fn load_component(engine: &Engine, path: &Path) -> Result<Component, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let component = component_from_bytes(engine, path, &bytes)?;
    check_capabilities(engine, path, &component)?;
    Ok(component)
}

fn component_from_bytes(
    engine: &Engine,
    path: &Path,
    bytes: &[u8],
) -> Result<Component, LoadError> {
    let path_buf = || PathBuf::from(path);
    match Engine::detect_precompiled(bytes) {
        Some(Precompiled::Component) => {
            // SAFETY: `.cwasm` files are trusted input (see the module docs);
            // wasmtime validates the header, version and engine settings.
            unsafe { Component::deserialize(engine, bytes) }.map_err(|e| LoadError::Precompiled {
                path: path_buf(),
                reason: first_line(&e),
            })
        }
        Some(Precompiled::Module) => Err(LoadError::NotAComponent {
            path: path_buf(),
            what: "a precompiled core module",
        }),
        None if bytes.starts_with(b"\0asm") => {
            if is_core_module(bytes) {
                return Err(LoadError::NotAComponent {
                    path: path_buf(),
                    what: "a core WebAssembly module",
                });
            }
            compile(engine, path, bytes)
        }
        None => Err(LoadError::NotWasm { path: path_buf() }),
    }
}

#[cfg(feature = "compiler")]
fn compile(engine: &Engine, path: &Path, bytes: &[u8]) -> Result<Component, LoadError> {
    Component::from_binary(engine, bytes).map_err(|e| LoadError::Compile {
        path: path.to_owned(),
        reason: format!("{e:#}"),
    })
}

/// This build has no compiler: only `.cwasm` load.
#[cfg(not(feature = "compiler"))]
fn compile(_: &Engine, path: &Path, _: &[u8]) -> Result<Component, LoadError> {
    Err(LoadError::NoCompiler {
        path: path.to_owned(),
        cwasm: path.with_extension("cwasm"),
    })
}

/// Core modules have layer 0 in the preamble's second half; components have 1.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.get(6..8) == Some(&[0, 0])
}

/// Refuses a component that imports anything outside the granted set.
fn check_capabilities(
    engine: &Engine,
    path: &Path,
    component: &Component,
) -> Result<(), LoadError> {
    let summary = summarize(engine, component);
    match summary
        .imports
        .into_iter()
        .find(|name| !GRANTED_IMPORT_PREFIXES.iter().any(|p| name.starts_with(p)))
    {
        Some(import) => Err(LoadError::Capability {
            path: path.to_owned(),
            import,
        }),
        None => Ok(()),
    }
}

/// Lists a component's imports and exports.
pub fn summarize(engine: &Engine, component: &Component) -> ComponentSummary {
    let ty = component.component_type();
    let exports = ty
        .exports(engine)
        .map(|(name, item)| match item.ty {
            ComponentItem::ComponentFunc(_) => format!("func {name}"),
            ComponentItem::ComponentInstance(_) => format!("instance {name}"),
            _ => name.to_owned(),
        })
        .collect();
    ComponentSummary {
        imports: ty
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect(),
        exports,
    }
}

/// Compiles a `.wasm` component into `.cwasm` bytes for this engine's settings
/// (see `engine::plugin_engine`), after the same checks as [`load_component`].
pub fn precompile(engine: &Engine, path: &Path) -> Result<Vec<u8>, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    if Engine::detect_precompiled(&bytes).is_some() {
        return Err(LoadError::AlreadyPrecompiled {
            path: path.to_owned(),
        });
    }
    let component = component_from_bytes(engine, path, &bytes)?;
    check_capabilities(engine, path, &component)?;
    component.serialize().map_err(|e| LoadError::Compile {
        path: path.to_owned(),
        reason: format!("{e:#}"),
    })
}

#[cfg(all(test, not(feature = "compiler")))]
mod tests {
    use super::*;

    /// Not in the normal (compiler) suite; run it with `cargo test --profile
    /// dist -p pyrometer --no-default-features --lib plugins`, which reuses
    /// the lean extension's `dist` wasmtime.
    #[test]
    fn compilerless_build_refuses_wasm_with_how_to_precompile() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("empty.wasm");
        // The smallest component: preamble with version 0x0d, layer 1.
        std::fs::write(&path, b"\0asm\x0d\x00\x01\x00").expect("write");
        let engine = crate::plugins::plugin_engine().expect("engine");
        let err = load_component(&engine, &path).expect_err("no compiler");
        assert!(matches!(err, LoadError::NoCompiler { .. }), "{err}");
        let text = err.to_string();
        let cwasm = dir.path().join("empty.cwasm");
        let compile = format!(
            "`pyrometer plugin compile {} -o {}`",
            path.display(),
            cwasm.display()
        );
        assert!(text.contains(&compile), "{text}");
        assert!(text.contains("`pyrometer layer build`"), "{text}");
    }
}

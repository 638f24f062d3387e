//! The adapter between an [`Analyzer`](crate::Analyzer) and the world that
//! wit-bindgen generates in the plugin crate.

/// Exports an [`Analyzer`](crate::Analyzer) as the component's `configure` and
/// `analyze`.
///
/// Invoke it in the plugin crate next to the bindings module that
/// `wit_bindgen::generate!` produced for the `analyzer` world:
///
/// ```ignore
/// mod bindings {
///     wit_bindgen::generate!({ path: "../../wit", world: "analyzer" });
/// }
/// pyrometer_plugin_kit::export_analyzer!(SlowImports, bindings);
/// ```
///
/// The expansion keeps the one analyzer of the instance in a static (a
/// component instance is single-threaded; pyrometer reuses it warm across
/// calls), replaces it on every `configure`, moves the lifted WIT columns into
/// the kit's [`Batch`](crate::Batch) without copying them, validates the batch,
/// and routes the [`Log`](crate::Log) to the host's `log` import. Everything
/// here is plain conversion; behaviour lives in the analyzer, where native
/// tests reach it.
#[macro_export]
macro_rules! export_analyzer {
    ($analyzer:ty, $bindings:ident) => {
        const _: () = {
            use $bindings::pyrometer::plugin::host as wit_host;
            use $bindings::pyrometer::plugin::types as wit;
            use $crate::{model as kit, output as kit_out};

            /// The analyzer of this instance, set by `configure`.
            static INSTANCE: ::std::sync::Mutex<::core::option::Option<$analyzer>> =
                ::std::sync::Mutex::new(::core::option::Option::None);

            /// Writes the kit's log lines through the host import.
            struct HostLog;

            impl $crate::Log for HostLog {
                fn log(&mut self, level: $crate::Level, message: &str) {
                    let level = match level {
                        $crate::Level::Debug => wit_host::Level::Debug,
                        $crate::Level::Info => wit_host::Level::Info,
                        $crate::Level::Warn => wit_host::Level::Warn,
                        $crate::Level::Error => wit_host::Level::Error,
                    };
                    wit_host::log(level, message);
                }
            }

            fn status(status: wit::Status) -> kit::Status {
                match status {
                    wit::Status::Success => kit::Status::Success,
                    wit::Status::Error => kit::Status::Error,
                    wit::Status::Timeout => kit::Status::Timeout,
                    wit::Status::OutOfMemory => kit::Status::OutOfMemory,
                    wit::Status::Failure => kit::Status::Failure,
                }
            }

            fn origin(origin: wit::Origin) -> kit::Origin {
                match origin {
                    wit::Origin::Builtin => kit::Origin::Builtin,
                    wit::Origin::Stdlib => kit::Origin::Stdlib,
                    wit::Origin::SitePackages => kit::Origin::SitePackages,
                    wit::Origin::Layer => kit::Origin::Layer,
                    wit::Origin::FunctionCode => kit::Origin::FunctionCode,
                }
            }

            fn batch(batch: wit::Batch) -> kit::Batch {
                let wit::Batch {
                    function,
                    invocations: i,
                    imports,
                } = batch;
                kit::Batch {
                    function: kit::FunctionInfo {
                        name: function.name,
                        version: function.version,
                        runtime: function.runtime,
                        memory_size_mb: function.memory_size_mb,
                    },
                    invocations: kit::Invocations {
                        request_id: i.request_id,
                        start_unix_ms: i.start_unix_ms,
                        cold_start: i.cold_start,
                        status: i.status.into_iter().map(status).collect(),
                        duration_ms: i.duration_ms,
                        billed_duration_ms: i.billed_duration_ms,
                        init_duration_ms: i.init_duration_ms,
                        max_memory_used_mb: i.max_memory_used_mb,
                        memory_size_mb: i.memory_size_mb,
                        rss_bytes: i.rss_bytes,
                        cpu_user_ms: i.cpu_user_ms,
                        cpu_system_ms: i.cpu_system_ms,
                        gc_collections: i.gc_collections,
                        gc_pause_ms: i.gc_pause_ms,
                        allocated_blocks: i.allocated_blocks,
                        post_runtime_ms: i.post_runtime_ms,
                    },
                    imports: imports.map(|p| kit::ImportProfile {
                        module: p.module,
                        parent: p.parent,
                        self_us: p.self_us,
                        cumulative_us: p.cumulative_us,
                        origin: p.origin.into_iter().map(origin).collect(),
                    }),
                }
            }

            fn output(output: kit_out::Output) -> wit::Output {
                wit::Output {
                    metrics: output
                        .metrics
                        .into_iter()
                        .map(|m| wit::Metric {
                            name: m.name,
                            kind: match m.kind {
                                kit_out::MetricKind::Counter => wit::MetricKind::Counter,
                                kit_out::MetricKind::Gauge => wit::MetricKind::Gauge,
                                kit_out::MetricKind::Histogram => wit::MetricKind::Histogram,
                            },
                            help: m.help,
                            labels: m.labels,
                            value: m.value,
                        })
                        .collect(),
                    findings: output
                        .findings
                        .into_iter()
                        .map(|f| wit::Finding {
                            rule: f.rule,
                            severity: match f.severity {
                                kit_out::Severity::Info => wit::Severity::Info,
                                kit_out::Severity::Warning => wit::Severity::Warning,
                                kit_out::Severity::Critical => wit::Severity::Critical,
                            },
                            message: f.message,
                            labels: f.labels,
                        })
                        .collect(),
                }
            }

            /// The component's exports.
            struct Component;

            impl $bindings::Guest for Component {
                fn configure(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let analyzer =
                        $crate::configure::<$analyzer>(&config).map_err(|e| e.to_string())?;
                    *INSTANCE.lock().unwrap_or_else(|p| p.into_inner()) =
                        ::core::option::Option::Some(analyzer);
                    Ok(())
                }

                fn analyze(
                    input: wit::Batch,
                ) -> ::core::result::Result<wit::Output, ::std::string::String> {
                    let mut guard = INSTANCE.lock().unwrap_or_else(|p| p.into_inner());
                    let analyzer = guard
                        .as_mut()
                        .ok_or_else(|| "analyze was called before configure".to_owned())?;
                    $crate::analyze(analyzer, &batch(input), &mut HostLog).map(output)
                }
            }

    $bindings::export!(Component with_types_in $bindings);
        };
    };
}

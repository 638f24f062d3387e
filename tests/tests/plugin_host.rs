//! The plugin host against hostile guests, really compiled to wasm32-wasip2
//! components: deadlines, memory caps, traps, output floods, denied
//! capabilities, bounded output capture and the circuit breaker.

use pyrometer::model::{Batch, FunctionInfo, Invocation};
use pyrometer::plugins::{FailureKind, LoadError, PluginSet, PluginSpec};
use pyrometer_tests::{guest, recorded_metrics, sample};

fn batch(function: &str, invocations: usize) -> Batch {
    Batch {
        function: FunctionInfo {
            name: function.into(),
            ..FunctionInfo::default()
        },
        invocations: (0..invocations)
            .map(|i| Invocation {
                request_id: format!("req-{i}"),
                duration_ms: 1.0 + i as f64,
                ..Invocation::default()
            })
            .collect(),
        imports: None,
    }
}

fn spec(name: &str) -> PluginSpec {
    PluginSpec::new(guest(name))
}

fn set_with(specs: &[PluginSpec]) -> PluginSet {
    let mut set = PluginSet::new().expect("engine");
    for s in specs {
        set.add(s)
            .unwrap_or_else(|e| panic!("load {}: {e}", s.path.display()));
    }
    set
}

fn only_failure(set: &mut PluginSet, b: &Batch) -> FailureKind {
    let report = set.run(b);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    report.failures[0].kind
}

fn gauge(report: &pyrometer::plugins::RunReport, name: &str) -> Option<f64> {
    report
        .output
        .metrics
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.value)
}

#[test]
fn infinite_loop_is_interrupted_and_other_plugins_keep_serving() {
    let mut looping = spec("spin-forever");
    looping.limits.deadline_ms = 50;
    let mut set = set_with(&[looping, spec("echo")]);
    for round in 0..2 {
        let started = std::time::Instant::now();
        let report = set.run(&batch("f", 3));
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(50),
            "round {round} returned before the deadline"
        );
        assert_eq!(
            report.failures.len(),
            1,
            "round {round}: {:?}",
            report.failures
        );
        assert_eq!(report.failures[0].kind, FailureKind::Deadline);
        assert!(
            report.failures[0].message.contains("50 ms deadline"),
            "{}",
            report.failures[0].message
        );
        assert_eq!(
            gauge(&report, "echo_invocations"),
            Some(3.0),
            "round {round}"
        );
    }
}

#[test]
fn memory_bomb_is_capped() {
    let mut bomb = spec("memory-bomb");
    bomb.limits.memory_cap_bytes = 16 << 20;
    bomb.limits.deadline_ms = 5_000;
    let mut set = set_with(&[bomb]);
    let ((), text) = recorded_metrics(|| {
        assert_eq!(only_failure(&mut set, &batch("f", 1)), FailureKind::Memory);
        // The plugin is re-instantiated and capped again, not wedged.
        assert_eq!(only_failure(&mut set, &batch("f", 1)), FailureKind::Memory);
    });
    assert_eq!(
        sample(
            &text,
            r#"pyrometer_plugin_failures_total{plugin="memory_bomb",kind="memory"}"#
        ),
        Some(2.0),
        "{text}"
    );
}

#[test]
fn panic_traps_and_a_fresh_instance_serves_the_next_call() {
    let mut set = set_with(&[spec("panicker")]);
    let calls = |set: &mut PluginSet| {
        let report = set.run(&batch("ok", 1));
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        report.output.metrics[0].value
    };
    let ((), text) = recorded_metrics(|| {
        assert_eq!(calls(&mut set), 1.0);
        assert_eq!(calls(&mut set), 2.0, "the warm instance keeps its state");
        assert_eq!(
            only_failure(&mut set, &batch("panic", 1)),
            FailureKind::Trap
        );
        assert_eq!(calls(&mut set), 1.0, "state restarts in the fresh instance");
    });
    assert_eq!(
        sample(
            &text,
            r#"pyrometer_plugin_instantiations_total{plugin="panicker"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pyrometer_plugin_failures_total{plugin="panicker",kind="trap"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"pyrometer_plugin_calls_total{plugin="panicker"}"#),
        Some(4.0)
    );
}

#[test]
fn output_flood_is_rejected_and_modest_output_accepted() {
    let mut flood = spec("flood");
    flood.config.insert("metrics".into(), "20000".into());
    flood.limits.deadline_ms = 5_000;
    let mut set = set_with(&[flood]);
    assert_eq!(
        only_failure(&mut set, &batch("f", 1)),
        FailureKind::InvalidOutput
    );

    let mut modest = spec("flood");
    modest.config.insert("metrics".into(), "10".into());
    modest.config.insert("findings".into(), "2".into());
    let mut set = set_with(&[modest]);
    let report = set.run(&batch("f", 1));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        (report.output.metrics.len(), report.output.findings.len()),
        (10, 2)
    );
}

#[test]
fn invalid_metric_names_labels_and_kind_changes_are_rejected() {
    for mode in ["bad-name", "bad-label"] {
        let mut s = spec("bad-output");
        s.config.insert("mode".into(), mode.into());
        let mut set = set_with(&[s]);
        assert_eq!(
            only_failure(&mut set, &batch("f", 1)),
            FailureKind::InvalidOutput,
            "{mode}"
        );
    }
    let mut s = spec("bad-output");
    s.config.insert("mode".into(), "kind-flip".into());
    let mut set = set_with(&[s]);
    assert!(
        set.run(&batch("f", 1)).failures.is_empty(),
        "first kind is accepted"
    );
    let report = set.run(&batch("f", 1));
    assert_eq!(report.failures[0].kind, FailureKind::InvalidOutput);
    assert!(
        report.failures[0].message.contains("changed kind"),
        "{}",
        report.failures[0].message
    );
    assert!(
        report.output.metrics.is_empty(),
        "nothing of an invalid output is exported"
    );
}

#[test]
fn rejected_config_disables_the_plugin_with_its_message() {
    let mut s = spec("rejects-config");
    s.config.insert("threshold".into(), "abc".into());
    let mut set = PluginSet::new().expect("engine");
    let err = set.add(&s).expect_err("config must be rejected");
    assert!(matches!(err, LoadError::Start { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("threshold must be a number, got 'abc'"),
        "{err}"
    );
    assert!(set.plugins().is_empty());

    s.config.insert("threshold".into(), "3".into());
    assert!(set.add(&s).is_ok());
}

#[test]
fn a_guest_importing_sockets_fails_to_load_clearly() {
    let set = PluginSet::new().expect("engine");
    let err = set
        .check(&guest("net-client"))
        .expect_err("sockets are not granted");
    let text = err.to_string();
    assert!(matches!(err, LoadError::Capability { .. }), "{text}");
    assert!(text.contains("wasi:sockets/"), "{text}");
    assert!(text.contains("does not grant"), "{text}");
}

#[test]
fn chatty_guest_output_is_bounded_and_counted() {
    let mut s = spec("chatty");
    s.limits.deadline_ms = 5_000;
    s.limits.capture_bytes = 1024;
    let mut set = set_with(&[s]);
    // Two calls: each call's drops are counted once, not carried into the next.
    let (reports, text) = recorded_metrics(|| [set.run(&batch("f", 1)), set.run(&batch("f", 1))]);
    for report in &reports {
        assert!(report.failures.is_empty(), "{:?}", report.failures);
    }
    let stdout_dropped = sample(
        &text,
        r#"pyrometer_plugin_stdio_dropped_bytes_total{plugin="chatty",stream="stdout"}"#,
    )
    .expect("stdout drops counted");
    assert!(
        stdout_dropped >= 2.0 * ((1 << 20) as f64 - 1024.0),
        "{stdout_dropped}"
    );
    let log_dropped = sample(
        &text,
        r#"pyrometer_plugin_log_lines_dropped_total{plugin="chatty"}"#,
    )
    .expect("log drops counted");
    assert_eq!(log_dropped, 2.0 * (10_000.0 - 100.0));
}

#[test]
fn breaker_opens_after_consecutive_failures_and_says_so() {
    let mut looping = spec("spin-forever");
    looping.limits.deadline_ms = 10;
    looping.limits.breaker_threshold = 3;
    let mut set = set_with(&[looping]);
    let (reports, text) =
        recorded_metrics(|| (0..5).map(|_| set.run(&batch("f", 1))).collect::<Vec<_>>());
    let kinds: Vec<_> = reports.iter().map(|r| r.failures[0].kind).collect();
    assert_eq!(
        kinds,
        [
            FailureKind::Deadline,
            FailureKind::Deadline,
            FailureKind::Deadline,
            FailureKind::Disabled,
            FailureKind::Disabled
        ]
    );
    let opened: Vec<_> = reports
        .iter()
        .map(|r| {
            r.output
                .findings
                .iter()
                .any(|f| f.rule == "plugin-disabled")
        })
        .collect();
    assert_eq!(
        opened,
        [false, false, true, false, false],
        "one finding, when the breaker opens"
    );
    assert!(set.plugins()[0].is_disabled());
    assert_eq!(
        sample(&text, r#"pyrometer_plugin_disabled{plugin="spin_forever"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"pyrometer_plugin_failures_total{plugin="spin_forever",kind="disabled"}"#
        ),
        Some(2.0)
    );
}

#[test]
fn echo_sees_the_batch_as_sent() {
    let mut set = set_with(&[spec("echo")]);
    let mut b = batch("my-fn", 4);
    b.invocations[1].billed_duration_ms = Some(3.0);
    let report = set.run(&b);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(gauge(&report, "echo_invocations"), Some(4.0));
    assert_eq!(
        gauge(&report, "echo_duration_sum_ms"),
        Some(1.0 + 2.0 + 3.0 + 4.0)
    );
    assert_eq!(gauge(&report, "echo_nan_billed"), Some(3.0));
    assert_eq!(gauge(&report, "echo_imports"), Some(-1.0));
    let m = report
        .output
        .metrics
        .iter()
        .find(|m| m.name == "echo_invocations")
        .expect("metric");
    assert!(m.labels.contains(&("function".into(), "my-fn".into())));
}

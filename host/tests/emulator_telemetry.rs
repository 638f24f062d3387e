//! Telemetry: the real payloads in `shared/fixtures/telemetry` parse; the
//! emulator's own events (and its SHUTDOWN event) have their shape; and the
//! tolerant listener gets the emulator's batches, answers 200 to anything,
//! and counts what it could not use.

mod emulator_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use emulator_support::{TempDir, builtin_config, python_extension, telemetry_fixtures};
use pyrometer::emulator::{Buffering, Emulator, InitType, ShutdownReason, Status, TelemetryType};
use pyrometer::sources::telemetry::{
    ListenerConfig, Record, TelemetryEvent, TelemetryListener, parse_batch,
};
use serde_json::Value;

const HANG_BOUND: Duration = Duration::from_secs(30);
const APP: &str = "def handler(event, context):\n    print('log line')\n    return {'ok': True}\n";

/// Every leaf path of a JSON value with its kind; spans are keyed by name.
fn shape(value: &Value, prefix: &str, out: &mut BTreeMap<String, &'static str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                shape(v, &format!("{prefix}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let key = item
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_string);
                shape(item, &format!("{prefix}[{key}]"), out);
            }
        }
        Value::Number(n) if n.is_f64() => {
            out.insert(prefix.to_string(), "float");
        }
        Value::Number(_) => {
            out.insert(prefix.to_string(), "integer");
        }
        Value::String(_) => {
            out.insert(prefix.to_string(), "string");
        }
        Value::Bool(_) => {
            out.insert(prefix.to_string(), "bool");
        }
        Value::Null => {
            out.insert(prefix.to_string(), "null");
        }
    }
}

fn shape_of(value: &Value) -> BTreeMap<String, &'static str> {
    let mut out = BTreeMap::new();
    shape(value, "", &mut out);
    out
}

fn is_lambda_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 24
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23) || c.is_ascii_digit())
}

#[test]
fn every_fixture_parses_completely_and_round_trips() {
    for (name, fixture) in telemetry_fixtures() {
        if !fixture.is_array() {
            continue; // An Extensions API event, checked against the emulator's below.
        }
        let text = serde_json::to_vec(&fixture).expect("serialise");
        let (events, stats) = parse_batch(&text);
        assert_eq!(stats.invalid_batches, 0, "{name}");
        assert_eq!(
            stats.events as usize,
            fixture.as_array().map_or(0, Vec::len),
            "{name}"
        );
        assert_eq!(
            (stats.unknown_type, stats.malformed, stats.incomplete),
            (0, 0, 0),
            "{name}: {stats:?}"
        );
        assert!(
            events.iter().all(|e| !matches!(e.record, Record::Raw(_))),
            "{name}"
        );
        assert!(events.iter().all(|e| e.time_unix_ms().is_some()), "{name}");
        let back = serde_json::to_value(&events).expect("serialise events");
        assert_eq!(back, fixture, "{name} does not survive a round trip");
    }
}

#[test]
fn the_emulators_events_have_the_fixtures_shape() {
    let dir = TempDir::new("shape");
    dir.write("app.py", APP);
    let shutdown_out = dir.path().join("shutdown.json");
    let ext = python_extension(
        &dir,
        "recorder",
        &["INVOKE", "SHUTDOWN"],
        &format!(
            "while True:\n    r, body = api('GET', '/2020-01-01/extension/event/next', headers={{'Lambda-Extension-Identifier': ext_id}})\n    if json.loads(body)['eventType'] == 'SHUTDOWN':\n        open({:?}, 'wb').write(body)\n        sys.exit(0)",
            shutdown_out.display().to_string()
        ),
    );
    let mut config = builtin_config(dir.path(), "app.handler");
    config.extensions.push(ext);
    let mut emulator = Emulator::start(config).expect("start");
    for _ in 0..2 {
        let outcome = emulator.invoke("{}").expect("invoke");
        assert_eq!(outcome.status, Status::Success, "{:?}", outcome.error);
    }
    emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown");
    let ours: Vec<Value> = emulator
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).expect("serialise"))
        .collect();
    for event in &ours {
        let time = event["time"].as_str().unwrap_or_default();
        assert!(is_lambda_timestamp(time), "{time}");
    }
    for (name, fixture) in telemetry_fixtures() {
        let fixture_events: Vec<Value> = match fixture {
            Value::Array(items) => items,
            // shutdown-event.json: the SHUTDOWN event of the Extensions API.
            single => {
                let sent: Value = serde_json::from_slice(
                    &std::fs::read(&shutdown_out).expect("the extension saved SHUTDOWN"),
                )
                .expect("JSON");
                let (want, got) = (shape_of(&single), shape_of(&sent));
                assert_eq!(want, got, "{name}: SHUTDOWN differs: {sent}");
                continue;
            }
        };
        for fixture_event in fixture_events {
            let event_type = fixture_event["type"].as_str().unwrap_or_default();
            let candidates: Vec<_> = ours.iter().filter(|e| e["type"] == event_type).collect();
            assert!(
                !candidates.is_empty(),
                "{name}: the emulator never emits {event_type}"
            );
            let want = shape_of(&fixture_event);
            // The richest of our events of that type (the first report carries initDurationMs).
            let best = candidates
                .iter()
                .map(|e| shape_of(e))
                .max_by_key(|got| {
                    want.iter()
                        .filter(|(path, kind)| got.get(*path) == Some(kind))
                        .count()
                })
                .unwrap_or_default();
            for (path, kind) in &want {
                assert_eq!(
                    best.get(path),
                    Some(kind),
                    "{name}: {event_type} lacks {path} as {kind}: {best:?}"
                );
            }
        }
    }
}

/// SnapStart events as AWS documents them (the Telemetry API schema
/// reference, its required fields, and the `platform.report` of a real
/// restored invocation), in the shape the emulator must emit them.
const SNAPSTART_EXAMPLES: &str = r#"[
  {"time": "2022-10-12T00:00:15.064Z", "type": "platform.initStart",
   "record": {"initializationType": "snap-start", "phase": "init", "runtimeVersion": "python:3.12.v20",
              "functionName": "myFunction", "functionVersion": "1"}},
  {"time": "2022-07-17T18:41:57.083Z", "type": "platform.initRuntimeDone",
   "record": {"initializationType": "snap-start", "phase": "init", "status": "success"}},
  {"time": "2022-07-17T18:41:57.083Z", "type": "platform.initReport",
   "record": {"initializationType": "snap-start", "phase": "init", "status": "success",
              "metrics": {"durationMs": 731.79}}},
  {"time": "2022-10-12T00:00:15.064Z", "type": "platform.restoreStart",
   "record": {"runtimeVersion": "python:3.12.v20", "functionName": "myFunction", "functionVersion": "1"}},
  {"time": "2022-10-12T00:00:15.064Z", "type": "platform.restoreRuntimeDone",
   "record": {"status": "success"}},
  {"time": "2022-10-12T00:00:15.064Z", "type": "platform.restoreReport",
   "record": {"status": "success", "metrics": {"durationMs": 15.19}}},
  {"time": "2024-02-09T08:42:44.080Z", "type": "platform.report",
   "record": {"requestId": "d661f7cf-9208-46b9-85b0-213b04a91065", "status": "success",
              "metrics": {"durationMs": 147.156, "billedDurationMs": 201, "memorySizeMB": 512,
                          "maxMemoryUsedMB": 91, "restoreDurationMs": 500.795, "billedRestoreDurationMs": 53}}}
]"#;

#[test]
fn the_emulators_snapstart_events_have_the_documented_shape() {
    let dir = TempDir::new("snapshape");
    dir.write("app.py", APP);
    let mut config = builtin_config(dir.path(), "app.handler");
    config.init_type = InitType::SnapStart;
    let mut emulator = Emulator::start(config).expect("start");
    let outcome = emulator.invoke("{}").expect("invoke");
    assert_eq!(outcome.status, Status::Success, "{:?}", outcome.error);
    let ours: Vec<Value> = emulator
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).expect("serialise"))
        .collect();
    let (parsed, stats) = parse_batch(&serde_json::to_vec(&ours).expect("serialise"));
    assert_eq!(
        (stats.unknown_type, stats.malformed, stats.incomplete),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(parsed.iter().all(|e| !matches!(e.record, Record::Raw(_))));
    let examples: Vec<Value> = serde_json::from_str(SNAPSTART_EXAMPLES).expect("examples");
    for example in examples {
        let event_type = example["type"].as_str().unwrap_or_default();
        let got = ours
            .iter()
            .find(|e| e["type"] == event_type)
            .unwrap_or_else(|| panic!("the emulator never emits {event_type}"));
        assert!(is_lambda_timestamp(
            got["time"].as_str().unwrap_or_default()
        ));
        let have = shape_of(got);
        for (path, kind) in shape_of(&example) {
            if path == ".time" {
                continue;
            }
            assert_eq!(
                have.get(&path),
                Some(&kind),
                "{event_type} lacks {path} as {kind}: {got}"
            );
        }
        if let Some(init_type) = example["record"].get("initializationType") {
            assert_eq!(&got["record"]["initializationType"], init_type, "{got}");
        }
    }
}

#[test]
fn the_listener_receives_the_emulators_batches() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let (listener, mut events) = runtime
        .block_on(TelemetryListener::bind(ListenerConfig::default()))
        .expect("bind");
    let dir = TempDir::new("listener");
    dir.write("app.py", APP);
    let mut emulator = Emulator::start(builtin_config(dir.path(), "app.handler")).expect("start");
    let all = [
        TelemetryType::Platform,
        TelemetryType::Function,
        TelemetryType::Extension,
    ];
    emulator
        .subscribe_http(&listener.uri(), &all, Buffering::fastest())
        .expect("subscribe");
    let mut request_ids = Vec::new();
    for _ in 0..3 {
        request_ids.push(emulator.invoke("{}").expect("invoke").request_id);
    }
    emulator.shutdown(ShutdownReason::Spindown);

    let mut received: Vec<TelemetryEvent> = Vec::new();
    let deadline = Instant::now() + HANG_BOUND;
    runtime.block_on(async {
        while received
            .iter()
            .filter(|e| e.event_type() == "platform.report")
            .count()
            < 3
        {
            match tokio::time::timeout_at(deadline.into(), events.recv()).await {
                Ok(Some(event)) => received.push(event),
                _ => panic!(
                    "only got {:?}",
                    received
                        .iter()
                        .map(TelemetryEvent::event_type)
                        .collect::<Vec<_>>()
                ),
            }
        }
    });
    let reported: Vec<&str> = received
        .iter()
        .filter(|e| e.event_type() == "platform.report")
        .filter_map(TelemetryEvent::request_id)
        .collect();
    assert_eq!(
        reported,
        request_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        received
            .iter()
            .any(|e| e.record == Record::FunctionLog(Value::String("log line".into())))
    );
    // Exactly what the emulator emitted, in order (the delivered prefix).
    let emitted = emulator.events();
    assert_eq!(received, emitted[..received.len()].to_vec());
    let stats = listener.stats();
    assert_eq!(
        stats.parse.invalid_batches + stats.parse.unknown_type + stats.parse.malformed,
        0,
        "{stats:?}"
    );
    assert_eq!(stats.parse.incomplete, 0, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    let subscription = emulator
        .subscriptions()
        .into_iter()
        .find(|s| s.name == "pyrometer")
        .expect("our subscription");
    assert_eq!(
        subscription.stats.batches_rejected + subscription.stats.batches_failed,
        0,
        "{subscription:?}"
    );
}

fn post(url: &str, body: &[u8]) -> u16 {
    match ureq::post(url)
        .header("Content-Type", "application/json")
        .send(body)
    {
        Ok(response) => response.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(e) => panic!("POST {url}: {e}"),
    }
}

#[test]
fn the_listener_answers_200_to_anything_and_counts_what_it_could_not_use() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let config = ListenerConfig {
        channel_capacity: 3,
        max_body_bytes: 4096,
        ..ListenerConfig::default()
    };
    let (listener, mut events) = runtime
        .block_on(TelemetryListener::bind(config))
        .expect("bind");
    let url = listener.uri();
    let valid = r#"{"time":"2024-07-01T08:54:54.125Z","type":"platform.start","record":{"requestId":"r1"}}"#;
    let bodies: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        b"{\"an\": \"object\"}".to_vec(),
        format!(r#"[{valid}, {{"time":"t","type":"platform.fromTheFuture","record":{{"x":1}}}}, 7, {{"type":"platform.report","record":{{"requestId":12}}}}]"#).into_bytes(),
        vec![b'['; 10_000],
        format!("[{valid},{valid},{valid}]").into_bytes(),
    ];
    for body in &bodies {
        assert_eq!(
            post(&url, body),
            200,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
    }
    let stats = listener.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.unreadable_bodies, 1, "the oversized body");
    assert_eq!(stats.parse.invalid_batches, 2, "{stats:?}");
    assert_eq!(stats.parse.events, 7);
    assert_eq!(stats.parse.unknown_type, 1);
    assert_eq!(
        stats.parse.malformed, 2,
        "a number and a report with a numeric requestId"
    );
    // Capacity 3: the first batch's four events fill it, the last batch is dropped.
    assert_eq!(stats.dropped, 4, "{stats:?}");
    let kept: Vec<TelemetryEvent> = runtime.block_on(async {
        let mut kept = Vec::new();
        while let Ok(event) = events.try_recv() {
            kept.push(event);
        }
        kept
    });
    assert_eq!(kept.len(), 3);
    assert!(matches!(kept[0].record, Record::Start(_)));
    assert!(
        matches!(&kept[1].record, Record::Raw(raw) if raw.event_type == "platform.fromTheFuture")
    );
}

#[test]
fn an_in_process_subscriber_gets_its_types_only() {
    let dir = TempDir::new("inproc");
    dir.write("app.py", APP);
    let mut emulator = Emulator::start(builtin_config(dir.path(), "app.handler")).expect("start");
    let platform = emulator.subscribe(&[TelemetryType::Platform], 1000);
    let tiny = emulator.subscribe(&[TelemetryType::Platform, TelemetryType::Function], 2);
    let outcome = emulator.invoke("{}").expect("invoke");
    assert_eq!(outcome.status, Status::Success);
    let got: Vec<TelemetryEvent> = platform.try_iter().collect();
    assert!(got.iter().all(|e| e.event_type().starts_with("platform.")));
    assert_eq!(
        got.iter()
            .filter(|e| e.event_type() == "platform.report")
            .count(),
        1
    );
    assert_eq!(tiny.try_iter().count(), 2);
    let reports = emulator.subscriptions();
    let tiny_stats = reports
        .iter()
        .map(|r| r.stats)
        .find(|s| s.events_dropped > 0)
        .expect("the tiny one dropped");
    assert_eq!(tiny_stats.events_queued, 2);
    drop(platform);
    assert_eq!(emulator.stats().events_evicted, 0);
    assert!(emulator.stats().events_emitted >= got.len() as u64);
}

//! The init import tree in formats existing profile viewers read: a
//! [speedscope](https://www.speedscope.app) file and folded stacks (Brendan
//! Gregg's `a;b;c <count>` lines, for `flamegraph.pl`, inferno and others).
//!
//! An [`ImportProfile`] enters; a JSON value or text leaves. The profile holds
//! durations, not timestamps, so the speedscope events are laid out the way a
//! flame chart of the import would look: each module opens where its parent
//! opened (or where its previous sibling closed) and closes after its
//! cumulative time, children in the order their imports began. Offsets are
//! microseconds from the first import. Malformed trees (a parent index that
//! does not point to an earlier module) are read as top-level modules, as in
//! every view of the report.

use serde_json::{Value, json};

use crate::model::{ImportProfile, InitReport};

use super::import_tree::ImportTree;

/// The file-format schema every speedscope file names.
const SPEEDSCOPE_SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

/// The cold start's import tree as a speedscope file: one "evented" profile
/// named `name`, one frame per module, open/close events at cumulative
/// offsets in microseconds. A cold start without an import profile gives a
/// valid file with an empty profile.
pub fn speedscope_json(init: &InitReport, name: &str) -> Value {
    let empty = ImportProfile::default();
    let profile = init.imports.as_ref().unwrap_or(&empty);
    let tree = ImportTree::new(profile);
    let modules = tree.modules();

    let frames: Vec<Value> = modules
        .iter()
        .map(|m| json!({ "name": m.module }))
        .collect();
    let mut events: Vec<Value> = Vec::with_capacity(modules.len() * 2);

    enum Step {
        Open(usize),
        Close { index: usize, opened_at: u64 },
    }
    let mut cursor: u64 = 0;
    let mut steps: Vec<Step> = tree.roots().iter().rev().map(|&r| Step::Open(r)).collect();
    while let Some(step) = steps.pop() {
        match step {
            Step::Open(index) => {
                events.push(json!({ "type": "O", "frame": index, "at": cursor }));
                steps.push(Step::Close {
                    index,
                    opened_at: cursor,
                });
                steps.extend(tree.children(index).iter().rev().map(|&c| Step::Open(c)));
            }
            Step::Close { index, opened_at } => {
                // Children whose times add up to more than their parent's
                // (clock skew, threads) stretch the parent rather than overlap it.
                cursor = opened_at
                    .saturating_add(modules[index].cumulative_us)
                    .max(cursor);
                events.push(json!({ "type": "C", "frame": index, "at": cursor }));
            }
        }
    }

    json!({
        "$schema": SPEEDSCOPE_SCHEMA,
        "name": name,
        "exporter": concat!("pyrometer ", env!("CARGO_PKG_VERSION")),
        "activeProfileIndex": 0,
        "shared": { "frames": frames },
        "profiles": [{
            "type": "evented",
            "name": name,
            "unit": "microseconds",
            "startValue": 0,
            "endValue": cursor,
            "events": events,
        }],
    })
}

/// The import tree as folded stacks: one `root;…;module <self µs>` line per
/// module with a non-zero self time, in import order. Characters the format
/// reserves (`;` separates frames, whitespace separates the count) are
/// replaced in module names.
pub fn folded_stacks(profile: &ImportProfile) -> String {
    let tree = ImportTree::new(profile);
    let mut out = String::new();
    for (index, module) in tree.modules().iter().enumerate() {
        if module.self_us == 0 {
            continue;
        }
        let frames: Vec<String> = tree.stack(index).into_iter().map(frame_name).collect();
        out.push_str(&frames.join(";"));
        out.push(' ');
        out.push_str(&module.self_us.to_string());
        out.push('\n');
    }
    out
}

fn frame_name(module: &str) -> String {
    let name: String = module
        .chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    if name.is_empty() {
        "?".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImportedModule, Origin};
    use crate::report::fixture::{import_profile, profile};

    /// Replays the events: every close matches the innermost open frame,
    /// time never goes backwards, and nothing is left open.
    fn assert_balanced(file: &Value) -> usize {
        let profile = &file["profiles"][0];
        assert_eq!(profile["type"], "evented");
        assert_eq!(profile["unit"], "microseconds");
        let events = profile["events"].as_array().expect("events");
        let mut open: Vec<u64> = Vec::new();
        let mut last_at = 0;
        let mut opened = 0;
        for event in events {
            let at = event["at"].as_u64().expect("at");
            let frame = event["frame"].as_u64().expect("frame");
            assert!(at >= last_at, "time went backwards at {event}");
            last_at = at;
            match event["type"].as_str() {
                Some("O") => {
                    open.push(frame);
                    opened += 1;
                }
                Some("C") => assert_eq!(
                    open.pop(),
                    Some(frame),
                    "close without matching open: {event}"
                ),
                other => panic!("unexpected event type {other:?}"),
            }
        }
        assert!(open.is_empty(), "frames left open: {open:?}");
        assert_eq!(profile["endValue"].as_u64(), Some(last_at));
        opened
    }

    #[test]
    fn events_are_balanced_nested_and_cover_every_module() {
        let imports = import_profile();
        let init = InitReport {
            imports: Some(imports.clone()),
            ..InitReport::default()
        };
        let file = speedscope_json(&init, "orders-api cold start");
        assert_eq!(file["$schema"], SPEEDSCOPE_SCHEMA);
        assert_eq!(
            file["shared"]["frames"].as_array().map(Vec::len),
            Some(imports.modules.len())
        );
        assert_eq!(assert_balanced(&file), imports.modules.len());
        let roots_us: u64 = imports
            .modules
            .iter()
            .filter(|m| m.parent.is_none())
            .map(|m| m.cumulative_us)
            .sum();
        assert_eq!(file["profiles"][0]["endValue"].as_u64(), Some(roots_us));
    }

    #[test]
    fn a_child_opens_inside_its_parent() {
        let p = profile(&[
            ("a", None, 10, Origin::Stdlib),
            ("b", Some(0), 5, Origin::Stdlib),
            ("c", Some(1), 2, Origin::Stdlib),
            ("d", None, 1, Origin::Stdlib),
        ]);
        let init = InitReport {
            imports: Some(p),
            ..InitReport::default()
        };
        let file = speedscope_json(&init, "x");
        let events: Vec<(String, u64, u64)> = file["profiles"][0]["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or_default().to_owned(),
                    e["frame"].as_u64().unwrap_or_default(),
                    e["at"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        let expected = [
            ("O", 0, 0),
            ("O", 1, 0),
            ("O", 2, 0),
            ("C", 2, 2),
            ("C", 1, 7),
            ("C", 0, 17),
            ("O", 3, 17),
            ("C", 3, 18),
        ];
        let expected: Vec<(String, u64, u64)> = expected
            .iter()
            .map(|&(t, f, a)| (t.to_owned(), f, a))
            .collect();
        assert_eq!(events, expected);
    }

    #[test]
    fn no_imports_is_an_empty_valid_profile() {
        let file = speedscope_json(&InitReport::default(), "empty");
        assert_eq!(assert_balanced(&file), 0);
        assert_eq!(folded_stacks(&ImportProfile::default()), "");
    }

    #[test]
    fn folded_self_times_sum_to_the_total() {
        let imports = import_profile();
        let folded = folded_stacks(&imports);
        let total: u64 = imports.modules.iter().map(|m| m.self_us).sum();
        let summed: u64 = folded
            .lines()
            .map(|l| {
                l.rsplit_once(' ')
                    .expect("count")
                    .1
                    .parse::<u64>()
                    .expect("number")
            })
            .sum();
        assert_eq!(summed, total);
        assert!(
            folded.lines().any(|l| l == "app;app.templates 182400"),
            "{folded}"
        );
        assert!(
            folded
                .lines()
                .any(|l| l.starts_with("urllib.request;http.client;ssl;_ssl ")),
            "{folded}"
        );
    }

    #[test]
    fn bad_parents_and_reserved_characters_do_not_break_anything() {
        let modules = vec![
            ImportedModule {
                module: "a;b c".into(),
                parent: Some(1),
                self_us: 3,
                cumulative_us: 3,
                ..ImportedModule::default()
            },
            ImportedModule {
                module: "later".into(),
                parent: Some(0),
                self_us: 4,
                cumulative_us: u64::MAX,
                ..ImportedModule::default()
            },
            ImportedModule {
                module: "self".into(),
                parent: Some(2),
                self_us: 5,
                cumulative_us: 1,
                ..ImportedModule::default()
            },
            ImportedModule {
                module: String::new(),
                parent: Some(usize::MAX),
                self_us: 6,
                cumulative_us: 6,
                ..ImportedModule::default()
            },
        ];
        let p = ImportProfile { modules };
        let folded = folded_stacks(&p);
        assert_eq!(folded, "a:b_c 3\na:b_c;later 4\nself 5\n? 6\n");
        let init = InitReport {
            imports: Some(p),
            ..InitReport::default()
        };
        assert_eq!(assert_balanced(&speedscope_json(&init, "bad")), 4);
    }
}

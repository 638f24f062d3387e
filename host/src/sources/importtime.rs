//! Parser of CPython's `-X importtime` text (`PYTHONPROFILEIMPORTTIME=1`).
//!
//! Data enters as stderr lines — in Lambda the `function` log lines of the
//! Telemetry API when the exec wrapper runs in `text` mode, or the stderr of a
//! local process — one at a time ([`ImportTimeParser::push_line`]) or as a whole
//! text ([`parse`]). It leaves as the same [`ImportProfile`] the probe
//! produces, plus [`ImportTimeStats`] saying what was skipped.
//!
//! The format, as CPython 3.7–3.14 prints it:
//!
//! ```text
//! import time: self [us] | cumulative | imported package
//! import time:       181 |        181 |     _codecs
//! import time:      4795 |       4975 |   codecs
//! import time:    cached |     cached |   os
//! ```
//!
//! * lines are printed when an import *ends*, so children come before their
//!   parent (post-order); the nesting depth is two spaces per level after the
//!   second `|`;
//! * a name can appear more than once (a module removed from `sys.modules` and
//!   imported again, or a failed import retried) — each line is its own node;
//! * 3.14's `-X importtime=2` adds lines whose times read `cached` for modules
//!   that were already imported: they are not imports, so they are counted and
//!   left out of the profile;
//! * other stderr output (warnings, the application's own prints) is interleaved
//!   anywhere: a line without `import time:` is counted and skipped, and one
//!   with it that does not parse is counted as malformed and skipped;
//! * a header in the middle of the text starts the profile of another
//!   interpreter (a subprocess writing to the same stderr):
//!   [`ImportTimeParser::push_line`] then returns the profile so far.
//!
//! The text does not tell where a module came from nor whether its import
//! failed: every module gets the default [`Origin`] and no error.

use crate::model::{ImportProfile, ImportedModule, Origin};

const MARKER: &str = "import time:";
const HEADER_TAIL: &str = "self [us] | cumulative | imported package";
const CACHED: &str = "cached";

/// What the parser read, by kind of line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportTimeStats {
    /// Every line pushed.
    pub lines: u64,
    /// Header lines (one per interpreter).
    pub headers: u64,
    /// Import lines turned into profile nodes.
    pub imports: u64,
    /// 3.14 `cached` lines (already-imported modules), skipped.
    pub cached: u64,
    /// Lines that were not `-X importtime` output, skipped.
    pub unrelated: u64,
    /// Lines with `import time:` that did not parse, skipped.
    pub malformed: u64,
    /// Nodes whose parent line never came (cut-off text); kept at top level.
    pub orphans: u64,
}

/// One parsed import line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line<'a> {
    Header,
    Import {
        depth: usize,
        self_us: u64,
        cumulative_us: u64,
        module: &'a str,
    },
    Cached,
    Unrelated,
    Malformed,
}

fn classify(line: &str) -> Line<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(at) = line.find(MARKER) else {
        return Line::Unrelated;
    };
    let rest = &line[at + MARKER.len()..];
    if rest.trim() == HEADER_TAIL {
        return Line::Header;
    }
    let mut fields = rest.splitn(3, '|');
    let (Some(self_field), Some(cumulative_field), Some(name_field)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Line::Malformed;
    };
    let (self_field, cumulative_field) = (self_field.trim(), cumulative_field.trim());
    if self_field == CACHED || cumulative_field == CACHED {
        return Line::Cached;
    }
    let (Ok(self_us), Ok(cumulative_us)) =
        (self_field.parse::<u64>(), cumulative_field.parse::<u64>())
    else {
        return Line::Malformed;
    };
    // After the `|`: one space, then two spaces per nesting level, then the name.
    let Some(indented) = name_field.strip_prefix(' ') else {
        return Line::Malformed;
    };
    let module = indented.trim_start_matches(' ');
    let spaces = indented.len() - module.len();
    let module = module.trim_end();
    if module.is_empty() || spaces % 2 != 0 || module.contains(char::is_whitespace) {
        return Line::Malformed;
    }
    Line::Import {
        depth: spaces / 2,
        self_us,
        cumulative_us,
        module,
    }
}

/// One import line, with the lines that ended inside it.
#[derive(Debug)]
struct Node {
    depth: usize,
    module: String,
    self_us: u64,
    cumulative_us: u64,
    /// Indices into [`ImportTimeParser::nodes`], in the order the children ended.
    children: Vec<usize>,
}

/// Incremental parser: push lines as they arrive, take the profile at the end.
///
/// Nodes live in one arena and refer to each other by index, so neither
/// building, flattening nor dropping a hostile, very deep tree recurses.
#[derive(Debug, Default)]
pub struct ImportTimeParser {
    nodes: Vec<Node>,
    /// Nodes not yet adopted by a parent, in the order they ended.
    pending: Vec<usize>,
    stats: ImportTimeStats,
}

impl ImportTimeParser {
    /// A parser with nothing read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read one line (with or without its line ending).
    ///
    /// Returns the profile of the previous interpreter when this line is a new
    /// header and imports were read since the last one.
    pub fn push_line(&mut self, line: &str) -> Option<ImportProfile> {
        self.stats.lines += 1;
        match classify(line) {
            Line::Header => {
                self.stats.headers += 1;
                if self.pending.is_empty() {
                    None
                } else {
                    Some(self.take_profile())
                }
            }
            Line::Import {
                depth,
                self_us,
                cumulative_us,
                module,
            } => {
                self.stats.imports += 1;
                // Every pending node deeper than this line is its child: they
                // ended after the previous line at this depth or shallower.
                let nodes = &self.nodes;
                let first_child = self
                    .pending
                    .iter()
                    .rposition(|&node| nodes[node].depth <= depth)
                    .map_or(0, |at| at + 1);
                let children: Vec<usize> = self.pending.drain(first_child..).collect();
                self.pending.push(self.nodes.len());
                self.nodes.push(Node {
                    depth,
                    module: module.to_owned(),
                    self_us,
                    cumulative_us,
                    children,
                });
                None
            }
            Line::Cached => {
                self.stats.cached += 1;
                None
            }
            Line::Unrelated => {
                self.stats.unrelated += 1;
                None
            }
            Line::Malformed => {
                self.stats.malformed += 1;
                None
            }
        }
    }

    /// What was read so far.
    pub fn stats(&self) -> ImportTimeStats {
        self.stats
    }

    /// The profile of everything read since the last header (or the start),
    /// leaving the parser empty but keeping its statistics.
    pub fn take_profile(&mut self) -> ImportProfile {
        let roots = std::mem::take(&mut self.pending);
        let mut nodes = std::mem::take(&mut self.nodes);
        let mut profile = ImportProfile {
            modules: Vec::with_capacity(nodes.len()),
        };
        // Pre-order: parents before children, siblings in the order they ran.
        let mut stack: Vec<(usize, Option<usize>)> =
            roots.iter().rev().map(|&root| (root, None)).collect();
        for &root in &roots {
            if nodes[root].depth > 0 {
                // Its parent's line never came: the text was cut mid-import.
                self.stats.orphans += 1;
            }
        }
        while let Some((node, parent)) = stack.pop() {
            let index = profile.modules.len();
            let node = &mut nodes[node];
            profile.modules.push(ImportedModule {
                module: std::mem::take(&mut node.module),
                parent,
                self_us: node.self_us,
                cumulative_us: node.cumulative_us,
                origin: Origin::default(),
                error: None,
            });
            // Reversed so the first child is popped (and numbered) first.
            stack.extend(
                node.children
                    .iter()
                    .rev()
                    .map(|&child| (child, Some(index))),
            );
        }
        profile
    }

    /// Finish: the profile of everything read since the last header.
    pub fn finish(mut self) -> (ImportProfile, ImportTimeStats) {
        let profile = self.take_profile();
        (profile, self.stats)
    }
}

/// Parse a whole text; with several interpreters' output, the profile is the last one's.
pub fn parse(text: &str) -> (ImportProfile, ImportTimeStats) {
    let mut parser = ImportTimeParser::new();
    for line in text.lines() {
        // Only the last interpreter's profile is kept; use the parser directly
        // to keep them all.
        let _earlier = parser.push_line(line);
    }
    parser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: [(&str, &str); 5] = [
        (
            "3.9",
            include_str!("testdata/importtime/heavyapp-cpython-3.9.txt"),
        ),
        (
            "3.10",
            include_str!("testdata/importtime/heavyapp-cpython-3.10.txt"),
        ),
        (
            "3.11",
            include_str!("testdata/importtime/heavyapp-cpython-3.11.txt"),
        ),
        (
            "3.12",
            include_str!("testdata/importtime/heavyapp-cpython-3.12.txt"),
        ),
        (
            "3.13",
            include_str!("testdata/importtime/heavyapp-cpython-3.13.txt"),
        ),
    ];

    fn find<'a>(profile: &'a ImportProfile, module: &str) -> Vec<(usize, &'a ImportedModule)> {
        profile
            .modules
            .iter()
            .enumerate()
            .filter(|(_, m)| m.module == module)
            .collect()
    }

    fn assert_well_formed(profile: &ImportProfile) {
        for (index, module) in profile.modules.iter().enumerate() {
            if let Some(parent) = module.parent {
                assert!(parent < index, "{module:?} at {index}");
                assert!(profile.modules[parent].cumulative_us >= module.cumulative_us);
            }
            assert!(module.self_us <= module.cumulative_us, "{module:?}");
        }
    }

    #[test]
    fn real_samples_from_every_installed_cpython() {
        for (version, text) in SAMPLES {
            let (profile, stats) = parse(text);
            assert_eq!(stats.headers, 1, "{version}");
            assert_eq!(stats.malformed, 0, "{version}");
            assert_eq!(stats.orphans, 0, "{version}");
            assert_eq!(stats.imports as usize, profile.modules.len(), "{version}");
            assert!(
                profile.modules.len() > 250,
                "{version}: {}",
                profile.modules.len()
            );
            assert_well_formed(&profile);
            // The application's own tree, as the sample shows it.
            let (app, heavyapp) = find(&profile, "heavyapp")[0];
            assert_eq!(
                heavyapp.parent.map(|p| profile.modules[p].module.as_str()),
                Some("heavyapp.handler")
            );
            let (_, config) = find(&profile, "heavyapp.config")[0];
            assert_eq!(config.parent, Some(app), "{version}");
            // Children's cumulative plus self is the parent's cumulative, to rounding.
            let children: u64 = profile
                .modules
                .iter()
                .filter(|m| m.parent == Some(app))
                .map(|m| m.cumulative_us)
                .sum();
            let diff = heavyapp.cumulative_us.abs_diff(heavyapp.self_us + children);
            assert!(diff <= 10, "{version}: {diff}");
            // The failed optional import is there, with no way to tell it failed.
            assert_eq!(find(&profile, "ujson_not_installed").len(), 1, "{version}");
        }
    }

    #[test]
    fn nesting_and_order_are_rebuilt_from_post_order() {
        let text = "\
import time: self [us] | cumulative | imported package
import time:        10 |         10 |     c
import time:        20 |         30 |   b
import time:         5 |          5 |   d
import time:         1 |         36 | a
import time:         7 |          7 | e
";
        let (profile, stats) = parse(text);
        let order: Vec<(&str, Option<usize>, u64, u64)> = profile
            .modules
            .iter()
            .map(|m| (m.module.as_str(), m.parent, m.self_us, m.cumulative_us))
            .collect();
        assert_eq!(
            order,
            vec![
                ("a", None, 1, 36),
                ("b", Some(0), 20, 30),
                ("c", Some(1), 10, 10),
                ("d", Some(0), 5, 5),
                ("e", None, 7, 7),
            ]
        );
        assert_eq!(stats.imports, 5);
        assert_eq!(profile.modules[0].origin, Origin::default());
        assert_eq!(profile.modules[0].error, None);
    }

    #[test]
    fn duplicate_names_are_separate_nodes() {
        let text = "\
import time:         3 |          3 |   dup
import time:         4 |          7 | first
import time:         5 |          5 |   dup
import time:         6 |         11 | second
import time:         9 |          9 | dup
";
        let (profile, _) = parse(text);
        let dups: Vec<Option<usize>> = profile
            .modules
            .iter()
            .filter(|m| m.module == "dup")
            .map(|m| m.parent)
            .collect();
        assert_eq!(dups, vec![Some(0), Some(2), None]);
    }

    #[test]
    fn python_3_14_cached_lines_are_counted_and_skipped() {
        let (profile, stats) = parse(include_str!("testdata/importtime/cached-cpython-3.14.txt"));
        assert!(stats.cached >= 5, "{stats:?}");
        assert_eq!(stats.malformed, 0);
        assert!(profile.modules.iter().all(|m| m.module != "builtins"));
        let (uuid_at, uuid) = find(&profile, "uuid")[0];
        assert_eq!(uuid.parent, None);
        let (_, native) = find(&profile, "_uuid")[0];
        assert_eq!(native.parent, Some(uuid_at));
        assert_well_formed(&profile);
    }

    #[test]
    fn interleaved_stderr_is_skipped_and_counted() {
        let (profile, stats) = parse(include_str!(
            "testdata/importtime/interleaved-cpython-3.12.txt"
        ));
        assert_eq!(stats.unrelated, 5, "{stats:?}");
        assert_eq!(stats.malformed, 1, "{stats:?}");
        let (noisy_at, _) = find(&profile, "noisy")[0];
        for child in ["json", "missing_optional_dep", "email.mime.text"] {
            let (_, module) = find(&profile, child)[0];
            assert_eq!(module.parent, Some(noisy_at), "{child}");
        }
        assert_well_formed(&profile);
    }

    #[test]
    fn a_second_header_closes_the_first_interpreter_profile() {
        let mut parser = ImportTimeParser::new();
        assert_eq!(
            parser.push_line("import time: self [us] | cumulative | imported package"),
            None
        );
        assert_eq!(
            parser.push_line("import time:         1 |          1 | one\n"),
            None
        );
        let first = parser.push_line("import time: self [us] | cumulative | imported package\r\n");
        assert_eq!(first.map(|p| p.modules.len()), Some(1));
        parser.push_line("import time:         2 |          2 | two");
        let (second, stats) = parser.finish();
        assert_eq!(second.modules[0].module, "two");
        assert_eq!(stats.headers, 2);
    }

    #[test]
    fn lines_with_a_prefix_still_parse() {
        let (profile, _) =
            parse("2024-05-01T10:00:00Z\timport time:        12 |         12 | prefixed\n");
        assert_eq!(profile.modules[0].module, "prefixed");
    }

    #[test]
    fn garbage_truncated_and_odd_lines_never_panic() {
        let inputs = [
            "",
            "\n\n\n",
            "import time:",
            "import time: |",
            "import time: 1 | 2",
            "import time: 1 | 2 |",
            "import time: 1 | 2 | ",
            "import time: x | 2 | a",
            "import time: -1 | 2 | a",
            "import time: 18446744073709551616 | 2 | a",
            "import time: 1 | 2 |   odd",
            "import time: 1 | 2 |a",
            "import time: 1 | 2 | two words",
            "import time: 1 | 2 | \u{0}\u{fffd}é",
            "import time: cached | 3 | half",
            "import time:         1 |          1 |         deep_without_parent",
        ];
        for input in inputs {
            let (profile, stats) = parse(input);
            assert_well_formed(&profile);
            assert!(stats.imports as usize >= profile.modules.len());
        }
        let (profile, stats) =
            parse("import time:         1 |          1 |         deep_without_parent");
        assert_eq!((profile.modules.len(), stats.orphans), (1, 1));
        let (profile, stats) = parse("import time: 1 | 2 | two words");
        assert_eq!((profile.modules.len(), stats.malformed), (0, 1));
    }

    #[test]
    fn truncated_real_text_keeps_what_it_can() {
        let text = SAMPLES[3].1;
        let cut = &text[..text.len() / 2];
        let (profile, stats) = parse(cut);
        assert!(!profile.modules.is_empty());
        assert_well_formed(&profile);
        assert!(stats.orphans > 0);
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 3_000;
        let mut text = String::new();
        for level in (0..depth).rev() {
            text.push_str(&format!(
                "import time: 1 | {} | {}m{level}\n",
                depth - level,
                " ".repeat(level * 2)
            ));
        }
        let (profile, stats) = parse(&text);
        assert_eq!(profile.modules.len(), depth);
        assert_eq!(stats.orphans, 0);
        assert_eq!(profile.modules[depth - 1].parent, Some(depth - 2));
    }
}

//! The terminal view of a [`LambdaReport`]: what `pyrometer lambda` prints
//! when the run ends.
//!
//! The report enters whole and leaves as text on any [`Write`]; nothing is
//! computed here that the JSON does not hold. Sections, top to bottom: a header
//! (function, handler, runtime client, environments × invocations); the cold
//! start of each environment split into interpreter / imports / handler
//! module / rest, as numbers and a bar; the slowest imports as a tree with self
//! and cumulative time; latency percentiles; memory per invocation as a
//! sparkline with its trend; GC; findings by severity; plugin failures.
//!
//! Lines stay within [`LINE_WIDTH_COLUMNS`] (long names are shortened, long
//! messages wrapped). Colour is a switch, so the same code serves a terminal
//! and a log file; text from the measured program (module names, messages) has
//! its control characters replaced, so a hostile module name cannot move the
//! cursor or recolour the terminal.

use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};

use crate::model::{Origin, Severity, Status};

use super::import_tree::ImportTree;
use super::summary::{MemoryTrend, gc_collections, gc_pause_ms, rss_at_end_bytes};
use super::{Distribution, EnvironmentRun, LambdaReport};

/// The widest line the view writes, in columns.
pub const LINE_WIDTH_COLUMNS: usize = 100;

/// How many modules the import tree shows by default (plus their ancestors).
pub const DEFAULT_TOP_IMPORTS: usize = 20;

/// Width of the init breakdown bar, columns.
const INIT_BAR_COLUMNS: usize = 80;

/// Widest sparkline of memory readings, columns; longer series are bucketed.
const SPARKLINE_COLUMNS: usize = 90;

/// A module whose self time is at least 1/`SLOW_SELF_SHARE` of all import
/// time is highlighted in the tree.
const SLOW_SELF_SHARE: u64 = 10;

/// Fewest columns a module name gets in the tree, notes or not.
const MIN_NAME_COLUMNS: usize = 12;

/// Deepest tree prefix drawn in full, columns; deeper ones are cut on the left.
const TREE_PREFIX_COLUMNS: usize = 30;

/// How the terminal view is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Emit ANSI colour codes.
    pub color: bool,
    /// How many modules (by cumulative time) the import tree shows.
    pub top_imports: usize,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        Self {
            color: false,
            top_imports: DEFAULT_TOP_IMPORTS,
        }
    }
}

impl TerminalOptions {
    /// Options for printing to stdout: colour when stdout is a terminal and
    /// `NO_COLOR` is unset or empty (<https://no-color.org>).
    pub fn for_stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: io::stdout().is_terminal() && !no_color,
            ..Self::default()
        }
    }
}

/// Writes the terminal view of `report` to `out`.
pub fn write_terminal(
    report: &LambdaReport,
    options: &TerminalOptions,
    out: &mut impl Write,
) -> io::Result<()> {
    let view = View {
        report,
        paint: Paint {
            color: options.color,
        },
        top_imports: options.top_imports,
    };
    let mut lines = Vec::new();
    view.header(&mut lines);
    view.cold_start(&mut lines);
    view.imports(&mut lines);
    view.latency(&mut lines);
    view.memory(&mut lines);
    view.gc(&mut lines);
    view.findings(&mut lines);
    view.plugin_failures(&mut lines);
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// ANSI SGR codes the view uses.
#[derive(Debug, Clone, Copy)]
enum Tone {
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Grey,
}

impl Tone {
    fn code(self) -> &'static str {
        match self {
            Tone::Bold => "1",
            Tone::Dim => "2",
            Tone::Red => "31",
            Tone::Green => "32",
            Tone::Yellow => "33",
            Tone::Blue => "34",
            Tone::Magenta => "35",
            Tone::Cyan => "36",
            Tone::Grey => "90",
        }
    }
}

/// Wraps text in colour codes, or leaves it alone when colour is off.
#[derive(Debug, Clone, Copy)]
struct Paint {
    color: bool,
}

impl Paint {
    fn tone(self, tone: Tone, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{}m{text}\x1b[0m", tone.code())
        } else {
            text.to_owned()
        }
    }
}

struct View<'a> {
    report: &'a LambdaReport,
    paint: Paint,
    top_imports: usize,
}

impl View<'_> {
    fn section(&self, lines: &mut Vec<String>, title: &str) {
        lines.push(String::new());
        lines.push(
            self.paint
                .tone(Tone::Bold, &clip(title, LINE_WIDTH_COLUMNS)),
        );
    }

    fn header(&self, lines: &mut Vec<String>) {
        let r = self.report;
        let f = &r.function;
        let mut title = format!("pyrometer lambda · {}", clean(or_dash(&f.name)));
        if !f.version.is_empty() {
            title.push_str(&format!(" ({})", clean(&f.version)));
        }
        if !f.runtime.is_empty() {
            title.push_str(&format!(" · {}", clean(&f.runtime)));
        }
        if f.memory_size_mb > 0 {
            title.push_str(&format!(" · {} MB", f.memory_size_mb));
        }
        lines.push(
            self.paint
                .tone(Tone::Bold, &clip(&title, LINE_WIDTH_COLUMNS)),
        );

        let mut second = format!(
            "handler {} · runtime client {}",
            clean(or_dash(&r.handler)),
            clean(or_dash(&r.runtime_client))
        );
        let python = r
            .environments
            .iter()
            .find_map(|env| env.init.python.as_ref())
            .map(|py| py.python.as_str())
            .filter(|p| !p.is_empty());
        if let Some(python) = python {
            second.push_str(&format!(" · {}", clean(python)));
        }
        lines.push(clip(&second, LINE_WIDTH_COLUMNS));

        let counts: Vec<usize> = r.environments.iter().map(|e| e.invocations.len()).collect();
        let total: usize = counts.iter().sum();
        let mut third = match counts.first() {
            Some(&n) if counts.iter().all(|&c| c == n) => format!(
                "{} × {}",
                plural(counts.len(), "environment"),
                plural(n, "invocation")
            ),
            _ => format!(
                "{}, {}",
                plural(counts.len(), "environment"),
                plural(total, "invocation")
            ),
        };
        let errors = r.summary.errors;
        if errors > 0 {
            third.push_str(" · ");
            third.push_str(&self.paint.tone(Tone::Red, &plural(errors, "error")));
        }
        lines.push(third);
    }

    fn cold_start(&self, lines: &mut Vec<String>) {
        self.section(lines, "Cold start");
        if self.report.environments.is_empty() {
            lines.push(self.paint.tone(Tone::Dim, "  no environment ran"));
            return;
        }
        let parts = [
            ("interpreter", Tone::Blue, '█'),
            ("imports", Tone::Cyan, '▓'),
            ("handler module", Tone::Magenta, '▒'),
            ("rest", Tone::Grey, '░'),
        ];
        let legend: Vec<String> = parts
            .iter()
            .map(|&(name, tone, glyph)| {
                let mark = if self.paint.color { '█' } else { glyph };
                format!("{} {name}", self.paint.tone(tone, &mark.to_string()))
            })
            .collect();
        lines.push(format!("  {}", legend.join("  ")));
        lines.push(self.paint.tone(
            Tone::Dim,
            &format!(
                "  {:<16}{:>11}{:>14}{:>11}{:>17}{:>11}",
                "environment", "init", "interpreter", "imports", "handler module", "rest"
            ),
        ));
        for (n, env) in self.report.environments.iter().enumerate() {
            let init = &env.init;
            let label = format!("#{} {}", n + 1, clean(or_dash(&init.init_type)));
            let failed = init.error_type.is_some()
                || init.init_status.as_deref().is_some_and(|s| s != "success");
            let b = init.breakdown;
            let cell = |v: Option<f64>| v.map_or("–".to_owned(), fmt_ms);
            lines.push(format!(
                "  {:<16}{:>11}{:>14}{:>11}{:>17}{:>11}",
                clip(&label, 15),
                cell(init.init_duration_ms),
                cell(b.map(|b| b.interpreter_ms)),
                cell(b.map(|b| b.imports_ms)),
                cell(b.map(|b| b.handler_module_ms)),
                cell(b.map(|b| b.rest_ms)),
            ));
            if failed {
                let what = format!(
                    "init failed: {} (status {})",
                    clean(init.error_type.as_deref().unwrap_or("unknown error")),
                    clean(init.init_status.as_deref().unwrap_or("unknown"))
                );
                lines.push(format!(
                    "  {:16}{}",
                    "",
                    self.paint
                        .tone(Tone::Red, &clip(&what, LINE_WIDTH_COLUMNS - 18))
                ));
            }
            if let Some(b) = b {
                let values = [
                    b.interpreter_ms,
                    b.imports_ms,
                    b.handler_module_ms,
                    b.rest_ms,
                ];
                let widths = bar_widths(&values, INIT_BAR_COLUMNS);
                let mut bar = String::new();
                for (&(_, tone, glyph), width) in parts.iter().zip(widths) {
                    let mark = if self.paint.color { '█' } else { glyph };
                    bar.push_str(&self.paint.tone(tone, &mark.to_string().repeat(width)));
                }
                lines.push(format!("  {:16}{bar}", ""));
            } else if init.python.is_none() {
                lines.push(self.paint.tone(
                    Tone::Dim,
                    &format!("  {:16}no breakdown: the probe did not run", ""),
                ));
            }
        }
        if let Some(py) = self
            .report
            .environments
            .iter()
            .find_map(|env| env.init.python.as_ref())
        {
            let mut facts = vec![format!(
                "{} modules at ready ({} before the probe)",
                py.modules_at_ready, py.modules_before_probe
            )];
            facts.push(format!(
                "probe's own cost {}",
                fmt_ms(py.probe_init_us as f64 / 1e3)
            ));
            if let Some(error) = &py.error {
                facts.push(format!("handler import failed: {}", clean(error)));
            }
            lines.push(self.paint.tone(
                Tone::Dim,
                &clip(&format!("  {}", facts.join(" · ")), LINE_WIDTH_COLUMNS),
            ));
        }
    }

    fn imports(&self, lines: &mut Vec<String>) {
        let found = self
            .report
            .environments
            .iter()
            .enumerate()
            .find_map(|(n, env)| {
                env.init
                    .imports
                    .as_ref()
                    .filter(|p| !p.modules.is_empty())
                    .map(|p| (n, env, p))
            });
        let Some((n, env, profile)) = found else {
            self.section(lines, "Slowest imports");
            lines.push(
                self.paint
                    .tone(Tone::Dim, "  no import profile (the probe did not run)"),
            );
            return;
        };
        let tree = ImportTree::new(profile);
        let modules = tree.modules();
        let total_us = saturating_sum(tree.roots().iter().map(|&r| modules[r].cumulative_us));
        let shown = self.top_imports.min(modules.len());
        self.section(
            lines,
            &format!(
                "Slowest imports · environment #{}: {}, {}; top {} by cumulative time",
                n + 1,
                plural(modules.len(), "module"),
                fmt_ms(total_us as f64 / 1e3),
                shown
            ),
        );
        lines.push(self.paint.tone(
            Tone::Dim,
            &format!("  {:>9}  {:>9}  {:<8}  module", "self", "cum", "origin"),
        ));

        let handler_module = env.init.python.as_ref().and_then(|py| py.handler_module);
        let kept = kept_modules(&tree, shown, handler_module);

        // Depth-first over kept modules, siblings by cumulative time; each
        // level's leftovers summarized on one line.
        let items = |children: &[usize]| -> Vec<TreeItem> {
            let mut shown: Vec<usize> = children
                .iter()
                .copied()
                .filter(|c| kept.contains(c))
                .collect();
            shown.sort_by(|&a, &b| {
                modules[b]
                    .cumulative_us
                    .cmp(&modules[a].cumulative_us)
                    .then(a.cmp(&b))
            });
            let mut items: Vec<TreeItem> = shown.into_iter().map(TreeItem::Module).collect();
            let elided: Vec<usize> = children
                .iter()
                .copied()
                .filter(|c| !kept.contains(c))
                .collect();
            if !elided.is_empty() {
                items.push(TreeItem::Elided {
                    modules: elided.iter().map(|&c| tree.subtree_len(c)).sum(),
                    cumulative_us: saturating_sum(elided.iter().map(|&c| modules[c].cumulative_us)),
                });
            }
            items
        };
        // (item, prefix of its own line, prefix of its children's lines)
        let mut stack: Vec<(TreeItem, String, String)> = Vec::new();
        let push_level = |stack: &mut Vec<(TreeItem, String, String)>,
                          items: Vec<TreeItem>,
                          prefix: &str,
                          top: bool| {
            let last = items.len().saturating_sub(1);
            for (k, item) in items.into_iter().enumerate().rev() {
                let (own, below) = if top {
                    (String::new(), String::new())
                } else if k == last {
                    (format!("{prefix}└─ "), format!("{prefix}   "))
                } else {
                    (format!("{prefix}├─ "), format!("{prefix}│  "))
                };
                stack.push((item, own, below));
            }
        };
        push_level(&mut stack, items(tree.roots()), "", true);
        while let Some((item, own, below)) = stack.pop() {
            let prefix = self.paint.tone(Tone::Grey, &shorten_prefix(&own));
            let prefix_columns = shorten_prefix(&own).chars().count();
            match item {
                TreeItem::Module(i) => {
                    let m = &modules[i];
                    let mut notes: Vec<(String, Tone)> = Vec::new();
                    if handler_module == Some(i) {
                        notes.push(("← handler module".to_owned(), Tone::Magenta));
                    }
                    if let Some(error) = &m.error {
                        notes.push((format!("✗ {}", clean(error)), Tone::Red));
                    }
                    let avail = LINE_WIDTH_COLUMNS.saturating_sub(36 + prefix_columns);
                    fit_notes(&mut notes, avail.saturating_sub(MIN_NAME_COLUMNS));
                    let notes_columns: usize =
                        notes.iter().map(|(text, _)| text.chars().count() + 1).sum();
                    let room = avail.saturating_sub(notes_columns).max(1);
                    let name = clip_middle(&clean(&m.module), room);
                    // A module whose own time is a tenth of all imports is
                    // the kind of culprit the tree is for: make it stand out.
                    let heavy = m.self_us.saturating_mul(SLOW_SELF_SHARE) >= total_us.max(1);
                    let self_ms = format!("{:>9}", fmt_ms(m.self_us as f64 / 1e3));
                    let (name, self_ms) = if heavy {
                        (
                            self.paint.tone(Tone::Bold, &name),
                            self.paint.tone(Tone::Yellow, &self_ms),
                        )
                    } else {
                        (name, self_ms)
                    };
                    let (origin, tone) = origin_label(m.origin);
                    let mut line = format!(
                        "  {self_ms}  {:>9}  {}  {prefix}{name}",
                        fmt_ms(m.cumulative_us as f64 / 1e3),
                        self.paint.tone(tone, &format!("{origin:<8}")),
                    );
                    for (note, tone) in notes {
                        line.push(' ');
                        line.push_str(&self.paint.tone(tone, &note));
                    }
                    lines.push(line);
                    push_level(&mut stack, items(tree.children(i)), &below, false);
                }
                TreeItem::Elided {
                    modules,
                    cumulative_us,
                } => {
                    let text = format!(
                        "… {} more {}, {}",
                        modules,
                        if modules == 1 { "module" } else { "modules" },
                        fmt_ms(cumulative_us as f64 / 1e3)
                    );
                    lines.push(format!(
                        "  {:>9}  {:>9}  {:8}  {prefix}{}",
                        "",
                        "",
                        "",
                        self.paint.tone(Tone::Dim, &text)
                    ));
                }
            }
        }
    }

    fn latency(&self, lines: &mut Vec<String>) {
        self.section(lines, "Latency (ms)");
        let s = &self.report.summary;
        lines.push(self.paint.tone(
            Tone::Dim,
            &format!(
                "  {:<18}{:>7}{:>10}{:>10}{:>10}{:>10}{:>10}",
                "", "count", "p50", "p95", "p99", "max", "mean"
            ),
        ));
        let row = |name: &str, d: &Distribution| {
            if d.count == 0 {
                format!("  {name:<18}{:>7}{:>10}", 0, "–")
            } else {
                format!(
                    "  {name:<18}{:>7}{:>10}{:>10}{:>10}{:>10}{:>10}",
                    d.count,
                    fmt_num(d.p50),
                    fmt_num(d.p95),
                    fmt_num(d.p99),
                    fmt_num(d.max),
                    fmt_num(d.mean)
                )
            }
        };
        lines.push(row("init", &s.init_ms));
        lines.push(row("cold invocation", &s.cold_invocation_ms));
        lines.push(row("warm invocation", &s.warm_invocation_ms));

        let mut statuses: Vec<(Status, Vec<String>)> = Vec::new();
        for inv in self
            .invocations()
            .filter(|inv| inv.status != Status::Success)
        {
            let at = match statuses.iter().position(|(s, _)| *s == inv.status) {
                Some(at) => at,
                None => {
                    statuses.push((inv.status, Vec::new()));
                    statuses.len() - 1
                }
            };
            if let Some(error) = &inv.error_type
                && !statuses[at].1.contains(error)
            {
                statuses[at].1.push(error.clone());
            }
        }
        if !statuses.is_empty() {
            let parts: Vec<String> = statuses
                .iter()
                .map(|(status, types)| {
                    let count = self
                        .invocations()
                        .filter(|inv| inv.status == *status)
                        .count();
                    let mut part = format!("{} ×{count}", status_name(*status));
                    if !types.is_empty() {
                        let types: Vec<String> = types.iter().take(3).map(|t| clean(t)).collect();
                        part.push_str(&format!(" ({})", types.join(", ")));
                    }
                    part
                })
                .collect();
            let text = format!("  not successful: {}", parts.join(" · "));
            lines.push(self.paint.tone(Tone::Red, &clip(&text, LINE_WIDTH_COLUMNS)));
        }
        let partial = self.invocations().filter(|inv| inv.partial).count();
        if partial > 0 {
            lines.push(self.paint.tone(
                Tone::Yellow,
                &format!(
                    "  {} completed by deadline (some figures missing)",
                    plural(partial, "record")
                ),
            ));
        }
    }

    fn memory(&self, lines: &mut Vec<String>) {
        self.section(lines, "Memory · RSS at the end of each invocation");
        let mut any = false;
        for (n, env) in self.report.environments.iter().enumerate() {
            let series: Vec<Option<f64>> = env.invocations.iter().map(rss_at_end_bytes).collect();
            let Some(trend) = MemoryTrend::of(&series) else {
                continue;
            };
            any = true;
            let growth = format!(
                "{}{}/invocation",
                if trend.growth_per_invocation >= 0.0 {
                    "+"
                } else {
                    "−"
                },
                fmt_bytes(trend.growth_per_invocation.abs())
            );
            let growing = trend.growth_per_invocation > 0.0
                && trend.growth_per_invocation * 100.0 > trend.first * 0.01;
            lines.push(format!(
                "  #{:<3} first {} · last {} · max {} · growth {}",
                n + 1,
                fmt_bytes(trend.first),
                fmt_bytes(trend.last),
                fmt_bytes(trend.max),
                if growing {
                    self.paint.tone(Tone::Yellow, &growth)
                } else {
                    growth
                }
            ));
            lines.push(format!(
                "       {}",
                self.paint
                    .tone(Tone::Cyan, &sparkline(&series, SPARKLINE_COLUMNS))
            ));
        }
        if !any {
            lines.push(self.paint.tone(Tone::Dim, "  no memory readings"));
        }
        let lambda_max = self
            .invocations()
            .filter_map(|inv| inv.max_memory_used_mb)
            .filter(|v| v.is_finite())
            .reduce(f64::max);
        if let Some(used) = lambda_max {
            let size = self.report.function.memory_size_mb;
            let text = if size > 0 {
                format!("  Lambda max memory used {} MB of {size} MB", fmt_num(used))
            } else {
                format!("  Lambda max memory used {} MB", fmt_num(used))
            };
            lines.push(self.paint.tone(Tone::Dim, &text));
        }
    }

    fn gc(&self, lines: &mut Vec<String>) {
        self.section(lines, "Garbage collector");
        let s = &self.report.summary;
        let mut generations = [0u64; 3];
        let mut have_generations = false;
        for py in self.invocations().filter_map(|inv| inv.python.as_ref()) {
            have_generations = true;
            for (total, g) in generations.iter_mut().zip(&py.gc) {
                *total += g.collections;
            }
        }
        let worst = self.invocations().filter_map(gc_pause_ms).reduce(f64::max);
        let mut text = format!(
            "  invocations  {}",
            plural(s.gc_collections as usize, "collection")
        );
        if have_generations {
            text.push_str(&format!(
                " (gen 0/1/2: {}/{}/{})",
                generations[0], generations[1], generations[2]
            ));
        }
        text.push_str(&format!(" · pause {} total", fmt_ms(s.gc_pause_ms)));
        if let Some(worst) = worst {
            text.push_str(&format!(" · worst invocation {}", fmt_ms(worst)));
        }
        lines.push(clip(&text, LINE_WIDTH_COLUMNS));
        let busiest = self.invocations().map(gc_collections).max().unwrap_or(0);
        if busiest > 0 {
            lines.push(self.paint.tone(
                Tone::Dim,
                &format!(
                    "  at most {} in one invocation",
                    plural(busiest as usize, "collection")
                ),
            ));
        }
        for (n, env) in self.report.environments.iter().enumerate() {
            if let Some(py) = &env.init.python {
                lines.push(format!(
                    "  init #{:<5} {} · pause {}",
                    n + 1,
                    plural(py.gc_collections as usize, "collection"),
                    fmt_ms(py.gc_pause_us as f64 / 1e3)
                ));
            }
        }
    }

    fn findings(&self, lines: &mut Vec<String>) {
        let mut findings: Vec<_> = self.report.findings.iter().collect();
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.plugin.cmp(&b.plugin))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        self.section(lines, &format!("Findings ({})", findings.len()));
        if findings.is_empty() {
            lines.push(self.paint.tone(Tone::Dim, "  none"));
        }
        const INDENT: &str = "            ";
        for finding in findings {
            let (label, tone) = match finding.severity {
                Severity::Critical => ("CRITICAL", Tone::Red),
                Severity::Warning => ("WARNING", Tone::Yellow),
                Severity::Info => ("INFO", Tone::Cyan),
            };
            let source = clip(
                &format!(
                    "{} › {}",
                    clean(or_dash(&finding.plugin)),
                    clean(or_dash(&finding.rule))
                ),
                LINE_WIDTH_COLUMNS - INDENT.len(),
            );
            lines.push(format!(
                "  {}  {}",
                self.paint.tone(tone, &format!("{label:<8}")),
                self.paint.tone(Tone::Bold, &source)
            ));
            for line in wrap(&clean(&finding.message), LINE_WIDTH_COLUMNS - INDENT.len()) {
                lines.push(format!("{INDENT}{line}"));
            }
            if !finding.labels.is_empty() {
                let labels: Vec<String> = finding
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{}={}", clean(k), clean(v)))
                    .collect();
                for line in wrap(&labels.join(" "), LINE_WIDTH_COLUMNS - INDENT.len()) {
                    lines.push(format!("{INDENT}{}", self.paint.tone(Tone::Dim, &line)));
                }
            }
        }
    }

    fn plugin_failures(&self, lines: &mut Vec<String>) {
        let failures = &self.report.plugin_failures;
        if failures.is_empty() {
            return;
        }
        lines.push(String::new());
        lines.push(
            self.paint
                .tone(Tone::Red, &format!("Plugin failures ({})", failures.len())),
        );
        for failure in failures {
            for (k, line) in wrap(&clean(failure), LINE_WIDTH_COLUMNS - 4)
                .into_iter()
                .enumerate()
            {
                lines.push(format!("  {} {line}", if k == 0 { "✗" } else { " " }));
            }
        }
    }

    fn invocations(&self) -> impl Iterator<Item = &crate::model::Invocation> {
        self.report
            .environments
            .iter()
            .flat_map(|env: &EnvironmentRun| env.invocations.iter())
    }
}

/// The modules the tree shows: the `top` by cumulative time, every failed
/// import and the handler's module, each with its ancestors so it hangs under
/// its importer.
fn kept_modules(
    tree: &ImportTree<'_>,
    top: usize,
    handler_module: Option<usize>,
) -> HashSet<usize> {
    let modules = tree.modules();
    let mut order: Vec<usize> = (0..modules.len()).collect();
    order.sort_by(|&a, &b| {
        modules[b]
            .cumulative_us
            .cmp(&modules[a].cumulative_us)
            .then(a.cmp(&b))
    });
    let failed = (0..modules.len()).filter(|&i| modules[i].error.is_some());
    let wanted = order
        .into_iter()
        .take(top)
        .chain(failed)
        .chain(handler_module.filter(|&i| i < modules.len()));
    let mut kept = HashSet::new();
    for i in wanted {
        let mut at = Some(i);
        while let Some(m) = at {
            if !kept.insert(m) {
                break;
            }
            at = tree.parent(m);
        }
    }
    kept
}

/// Microseconds added without overflow, whatever a profile file holds.
fn saturating_sum(values: impl Iterator<Item = u64>) -> u64 {
    values.fold(0, u64::saturating_add)
}

/// One line of the import tree.
#[derive(Debug, Clone, Copy)]
enum TreeItem {
    /// A module, by index.
    Module(usize),
    /// Siblings left out, with everything under them.
    Elided { modules: usize, cumulative_us: u64 },
}

/// Shortens notes (the last one first, then dropping from the front) until
/// they fit in `columns`, counting a space before each.
fn fit_notes(notes: &mut Vec<(String, Tone)>, columns: usize) {
    loop {
        let width: usize = notes.iter().map(|(text, _)| text.chars().count() + 1).sum();
        if width <= columns {
            return;
        }
        let over = width - columns;
        if let Some((last, _)) = notes.last_mut() {
            let len = last.chars().count();
            let shorter = len.saturating_sub(over).max(4);
            if shorter < len {
                *last = clip(last, shorter);
                continue;
            }
        }
        if notes.is_empty() {
            return;
        }
        notes.remove(0);
    }
}

/// Cuts a tree prefix deeper than [`TREE_PREFIX_COLUMNS`] on the left, so a
/// deep chain still leaves room for the module name.
fn shorten_prefix(prefix: &str) -> String {
    let columns = prefix.chars().count();
    if columns <= TREE_PREFIX_COLUMNS {
        return prefix.to_owned();
    }
    let tail: String = prefix
        .chars()
        .skip(columns - (TREE_PREFIX_COLUMNS - 1))
        .collect();
    format!("…{tail}")
}

fn origin_label(origin: Origin) -> (&'static str, Tone) {
    match origin {
        Origin::Builtin => ("builtin", Tone::Grey),
        Origin::Stdlib => ("stdlib", Tone::Blue),
        Origin::SitePackages => ("site-pkg", Tone::Yellow),
        Origin::Layer => ("layer", Tone::Magenta),
        Origin::FunctionCode => ("function", Tone::Green),
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::Error => "error",
        Status::Timeout => "timeout",
        Status::OutOfMemory => "out of memory",
        Status::Failure => "failure",
    }
}

/// Splits `columns` among non-negative parts in proportion (largest remainder).
fn bar_widths(values: &[f64], columns: usize) -> Vec<usize> {
    let clean: Vec<f64> = values
        .iter()
        .map(|v| if v.is_finite() { v.max(0.0) } else { 0.0 })
        .collect();
    let total: f64 = clean.iter().sum();
    if total <= 0.0 {
        return vec![0; values.len()];
    }
    let exact: Vec<f64> = clean.iter().map(|v| v / total * columns as f64).collect();
    let mut widths: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = columns.saturating_sub(widths.iter().sum());
    let mut by_remainder: Vec<usize> = (0..exact.len()).collect();
    by_remainder
        .sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for i in by_remainder {
        if left == 0 {
            break;
        }
        if clean[i] > 0.0 {
            widths[i] += 1;
            left -= 1;
        }
    }
    widths
}

/// A sparkline of `series` in at most `columns` cells; a cell covering several
/// readings shows their maximum, a missing reading is a space.
fn sparkline(series: &[Option<f64>], columns: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<Option<f64>> = series.iter().map(|v| v.filter(|v| v.is_finite())).collect();
    let cells: Vec<Option<f64>> = if values.len() <= columns {
        values
    } else {
        (0..columns)
            .map(|c| {
                let from = c * values.len() / columns;
                let to = ((c + 1) * values.len() / columns).max(from + 1);
                values[from..to].iter().flatten().copied().reduce(f64::max)
            })
            .collect()
    };
    let present = cells.iter().flatten();
    let low = present.clone().copied().fold(f64::INFINITY, f64::min);
    let high = present.copied().fold(f64::NEG_INFINITY, f64::max);
    cells
        .iter()
        .map(|cell| match cell {
            None => ' ',
            Some(_) if high <= low => BLOCKS[3],
            Some(v) => BLOCKS[(((v - low) / (high - low)) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

/// Milliseconds with precision that suits their size.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms.is_finite() {
        format!("{} ms", fmt_num(ms))
    } else {
        "–".to_owned()
    }
}

fn fmt_num(v: f64) -> String {
    // Adding +0.0 turns -0.0 into 0.0, so nothing prints as "-0.00".
    let v = v + 0.0;
    if !v.is_finite() {
        "–".to_owned()
    } else if v.abs() < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// Bytes in binary units (Lambda's "MB" are MiB).
pub fn fmt_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if !bytes.is_finite() {
        return "–".to_owned();
    }
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "–" } else { s }
}

/// Replaces control characters (escape sequences, newlines, tabs) so text from
/// the measured program prints as one inert line.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// At most `columns` characters, the end replaced by `…` when cut.
pub(crate) fn clip(text: &str, columns: usize) -> String {
    if text.chars().count() <= columns {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(columns.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `columns` characters, the middle replaced by `…` when cut: both a
/// dotted name's package and its last component stay readable.
fn clip_middle(text: &str, columns: usize) -> String {
    let count = text.chars().count();
    if count <= columns {
        return text.to_owned();
    }
    let keep = columns.saturating_sub(1);
    let head = keep / 2;
    let tail = keep - head;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(count - tail));
    out
}

/// Word-wraps to `columns`; a word longer than a line is cut into pieces.
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > columns {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..columns).collect());
        }
        let word: String = word.into_iter().collect();
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > columns {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, ImportedModule, InitReport, Invocation};
    use crate::report::fixture::{SLOW_MODULE, profile, realistic_report};

    fn render(report: &LambdaReport, color: bool, top_imports: usize) -> String {
        let mut out = Vec::new();
        write_terminal(report, &TerminalOptions { color, top_imports }, &mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    /// Removes SGR sequences, to measure what the terminal shows.
    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
    }

    fn column_of(line: &str, needle: &str) -> usize {
        let at = line.find(needle).expect("needle in line");
        line[..at].chars().count()
    }

    #[test]
    fn plain_output_has_every_section_and_no_colour() {
        let text = render(&realistic_report(), false, DEFAULT_TOP_IMPORTS);
        println!("{text}");
        assert!(!text.contains('\x1b'), "no escape codes without colour");
        for needle in [
            "orders-api ($LATEST) · python3.12 · 512 MB",
            "handler app.py:handler · runtime client builtin · cpython-3.12.3",
            "2 environments × 10 invocations · 1 error",
            "Cold start",
            "Slowest imports",
            "Latency (ms)",
            "warm invocation",
            "Memory",
            "Garbage collector",
            "Findings (3)",
            "leak-detector › memory-growth",
            "Plugin failures (1)",
            "cost-estimator: trap",
            "not successful: error ×1 (ValueError)",
            "✗ ModuleNotFoundError",
            "← handler module",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        for line in text.lines() {
            assert!(
                line.chars().count() <= LINE_WIDTH_COLUMNS,
                "too wide: {line:?}"
            );
        }
    }

    #[test]
    fn colour_output_fits_the_same_width() {
        let text = render(&realistic_report(), true, DEFAULT_TOP_IMPORTS);
        assert!(text.contains("\x1b[1m"));
        for line in strip_ansi(&text).lines() {
            assert!(
                line.chars().count() <= LINE_WIDTH_COLUMNS,
                "too wide: {line:?}"
            );
        }
        assert_eq!(
            strip_ansi(&text).lines().count(),
            render(&realistic_report(), false, DEFAULT_TOP_IMPORTS)
                .lines()
                .count()
        );
    }

    #[test]
    fn the_slow_module_hangs_under_its_importer() {
        let text = render(&realistic_report(), false, DEFAULT_TOP_IMPORTS);
        let parent = line_with(&text, " app ← handler module");
        let child = line_with(&text, SLOW_MODULE);
        assert!(child.contains("182.4 ms"), "self time shown: {child}");
        assert!(
            column_of(child, SLOW_MODULE) > column_of(parent, " app "),
            "indented:\n{parent}\n{child}"
        );
        let lines: Vec<&str> = text.lines().collect();
        let p = lines
            .iter()
            .position(|l| *l == parent)
            .expect("parent line");
        let c = lines.iter().position(|l| *l == child).expect("child line");
        assert!(c > p, "child after parent");
        // The slowest child comes first.
        assert!(lines[p + 1].contains(SLOW_MODULE), "{}", lines[p + 1]);
    }

    #[test]
    fn elided_subtrees_are_summarized() {
        let report = realistic_report();
        let text = render(&report, false, 5);
        let profile = report.environments[0]
            .init
            .imports
            .as_ref()
            .expect("imports");
        let module_lines = profile
            .modules
            .iter()
            .filter(|m| text.lines().any(|l| l.ends_with(&format!(" {}", m.module))))
            .count();
        assert!(module_lines < profile.modules.len());
        let elided = line_with(&text, "more modules");
        assert!(elided.contains("… "), "{elided}");
        // Every module is either shown or counted in an elision line.
        let counted: usize = text
            .lines()
            .filter_map(|l| l.split("… ").nth(1))
            .filter_map(|rest| rest.split(' ').next())
            .filter_map(|n| n.parse::<usize>().ok())
            .sum();
        let shown = text
            .lines()
            .filter(|l| {
                l.contains(" ms  ")
                    && (l.contains("stdlib")
                        || l.contains("site-pkg")
                        || l.contains("function")
                        || l.contains("layer")
                        || l.contains("builtin"))
            })
            .count();
        assert_eq!(counted + shown, profile.modules.len(), "\n{text}");
    }

    #[test]
    fn findings_come_most_severe_first() {
        let text = render(&realistic_report(), false, DEFAULT_TOP_IMPORTS);
        let critical = text.find("CRITICAL").expect("critical");
        let warning = text.find("WARNING").expect("warning");
        let info = text.find("INFO").expect("info");
        assert!(critical < warning && warning < info);
        assert!(line_with(&text, "WARNING").contains("slow-imports › slow-import"));
    }

    #[test]
    fn hostile_and_degenerate_input_renders() {
        let mut modules = profile(&[
            ("\x1b[2Jevil\nname", None, 10, Origin::Stdlib),
            (&"deep.".repeat(60), Some(0), 5, Origin::Stdlib),
        ])
        .modules;
        // A chain deeper than the prefix budget, and parents that point nowhere.
        for i in 0..40 {
            modules.push(ImportedModule {
                module: format!("chain{i}"),
                parent: Some(modules.len() - 1),
                self_us: 1,
                cumulative_us: 40 - i,
                ..ImportedModule::default()
            });
        }
        let bottom = modules.len() - 1;
        modules[bottom].error = Some("ModuleNotFoundError: a very long explanation".into());
        modules.push(ImportedModule {
            module: "orphan".into(),
            parent: Some(9_999),
            ..ImportedModule::default()
        });
        let report = LambdaReport {
            environments: vec![EnvironmentRun {
                init: InitReport {
                    imports: Some(crate::model::ImportProfile { modules }),
                    python: Some(crate::model::PythonInit {
                        handler_module: Some(bottom),
                        ..crate::model::PythonInit::default()
                    }),
                    init_status: Some("error".into()),
                    error_type: Some("Runtime.ImportModuleError".into()),
                    ..InitReport::default()
                },
                invocations: vec![Invocation {
                    duration_ms: f64::NAN,
                    rss_bytes: Some(f64::INFINITY),
                    ..Invocation::default()
                }],
            }],
            findings: vec![Finding {
                plugin: "p".into(),
                rule: "r".into(),
                severity: Severity::Info,
                message: "x".repeat(500),
                labels: vec![],
            }],
            ..LambdaReport::default()
        }
        .summarized();
        let text = render(&report, false, 100);
        assert!(!text.contains('\x1b'));
        assert!(text.contains("init failed: Runtime.ImportModuleError"));
        assert!(text.contains("orphan"));
        let bottom_line = line_with(&text, "chain39");
        assert!(
            bottom_line.contains("chain39 ← handler module ✗ M"),
            "{bottom_line}"
        );
        for line in text.lines() {
            assert!(
                line.chars().count() <= LINE_WIDTH_COLUMNS,
                "too wide: {line:?}"
            );
        }
        let empty = render(&LambdaReport::default(), true, 10);
        assert!(empty.contains("no environment ran"));
    }

    #[test]
    fn helpers_behave_at_the_edges() {
        assert_eq!(bar_widths(&[1.0, 1.0, 2.0, 0.0], 8), vec![2, 2, 4, 0]);
        assert_eq!(bar_widths(&[f64::NAN, 0.0], 8), vec![0, 0]);
        assert_eq!(bar_widths(&[1.0, 1.0, 1.0], 10).iter().sum::<usize>(), 10);
        assert_eq!(sparkline(&[Some(1.0), None, Some(3.0)], 10), "▁ █");
        assert_eq!(
            sparkline(
                &(0..200).map(|i| Some(f64::from(i))).collect::<Vec<_>>(),
                50
            )
            .chars()
            .count(),
            50
        );
        assert_eq!(clip_middle("abcdefghij", 5), "ab…ij");
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(fmt_bytes(262_144.0), "256.0 KiB");
        assert_eq!(fmt_ms(182.4), "182.4 ms");
        assert_eq!(fmt_ms(0.42), "0.42 ms");
        assert_eq!(fmt_ms(-0.0), "0.00 ms");
        let mut notes = vec![
            ("abcdef".to_owned(), Tone::Red),
            ("0123456789".to_owned(), Tone::Red),
        ];
        fit_notes(&mut notes, 14);
        assert_eq!(
            notes.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
            ["abcdef", "01234…"]
        );
        fit_notes(&mut notes, 5);
        assert_eq!(
            notes.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
            ["012…"]
        );
        fit_notes(&mut notes, 0);
        assert!(notes.is_empty());
    }
}

//! The Prometheus text exposition format (0.0.4): writing helpers and a parser.
//!
//! The registry renders text; the Pushgateway takes that text as it is, while
//! EMF and remote write need samples. Rather than keep a second copy of every
//! value, a flush renders once and parses the text back into a [`Snapshot`] of
//! [`MetricFamily`]s — one source of truth, and exactly what a scraper would
//! see. The parser accepts what the registry writes (and the usual rest of the
//! format); a line it cannot read is skipped and counted in
//! [`Snapshot::skipped_lines`]. Parsing happens on first use, so a flush that
//! only pushes text never pays for it.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The kind of a metric family, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    /// A monotonic total.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// A summary (`quantile`, `_sum`, `_count`).
    Summary,
    /// No `# TYPE` line.
    Untyped,
}

impl FamilyKind {
    fn parse(word: &str) -> Self {
        match word {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            _ => Self::Untyped,
        }
    }
}

/// One sample line: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's metric name (for histograms, with `_bucket`/`_sum`/`_count`).
    pub name: String,
    /// Label pairs, in the order they were written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_labels(&self, wanted: &[(&str, &str)]) -> bool {
        wanted.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// A metric family: its name, kind, HELP and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// Family name.
    pub name: String,
    /// Kind.
    pub kind: FamilyKind,
    /// HELP text (unescaped).
    pub help: String,
    /// The samples, in the order they were written.
    pub samples: Vec<Sample>,
}

/// The registry at one instant: the rendered text, parsed on first use.
///
/// The Pushgateway only needs the text, so a flush with no other exporter
/// never pays for parsing.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The text exposition, as a scraper would receive it.
    pub text: String,
    /// When the snapshot was taken, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    parsed: OnceLock<(Vec<MetricFamily>, usize)>,
}

impl Snapshot {
    /// A snapshot of `text`, stamped with the current time.
    pub fn new(text: String) -> Self {
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self {
            text,
            timestamp_ms,
            parsed: OnceLock::new(),
        }
    }

    /// The parsed families (parsed once, on the first call).
    pub fn families(&self) -> &[MetricFamily] {
        &self.parsed.get_or_init(|| parse(&self.text)).0
    }

    /// Lines of the text that could not be parsed.
    pub fn skipped_lines(&self) -> usize {
        self.parsed.get_or_init(|| parse(&self.text)).1
    }

    /// The family named `name`.
    pub fn family(&self, name: &str) -> Option<&MetricFamily> {
        self.families().iter().find(|f| f.name == name)
    }

    /// Every sample whose metric name is `sample_name` (e.g. `x_bucket`).
    pub fn samples<'a>(&'a self, sample_name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families()
            .iter()
            .flat_map(|f| f.samples.iter())
            .filter(move |s| s.name == sample_name)
    }

    /// The value of the first sample named `sample_name` that has all `labels`.
    pub fn value(&self, sample_name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(sample_name)
            .find(|s| s.has_labels(labels))
            .map(|s| s.value)
    }

    /// The number of sample lines (counted in the text, without parsing).
    pub fn series_count(&self) -> usize {
        match self.parsed.get() {
            Some((families, _)) => families.iter().map(|f| f.samples.len()).sum(),
            None => self
                .text
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count(),
        }
    }
}

/// Parses a text exposition into families; returns them and the number of
/// lines that could not be read.
pub fn parse(text: &str) -> (Vec<MetricFamily>, usize) {
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            let (keyword, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            match keyword {
                "HELP" => family_for(&mut families, name).help = unescape(tail, false),
                "TYPE" => family_for(&mut families, name).kind = FamilyKind::parse(tail.trim()),
                _ => {}
            }
            continue;
        }
        match parse_sample(line) {
            Some(sample) => {
                let belongs = families.last().is_some_and(|f| belongs_to(f, &sample.name));
                if !belongs {
                    families.push(MetricFamily {
                        name: sample.name.clone(),
                        kind: FamilyKind::Untyped,
                        help: String::new(),
                        samples: Vec::new(),
                    });
                }
                if let Some(family) = families.last_mut() {
                    family.samples.push(sample);
                }
            }
            None => skipped += 1,
        }
    }
    (families, skipped)
}

fn family_for<'a>(families: &'a mut Vec<MetricFamily>, name: &str) -> &'a mut MetricFamily {
    let is_current = families
        .last()
        .is_some_and(|f| f.name == name && f.samples.is_empty());
    if !is_current {
        families.push(MetricFamily {
            name: name.to_owned(),
            kind: FamilyKind::Untyped,
            help: String::new(),
            samples: Vec::new(),
        });
    }
    let last = families.len() - 1;
    &mut families[last]
}

fn belongs_to(family: &MetricFamily, sample_name: &str) -> bool {
    if sample_name == family.name {
        return true;
    }
    let suffixes: &[&str] = match family.kind {
        FamilyKind::Histogram => &["_bucket", "_sum", "_count"],
        FamilyKind::Summary => &["_sum", "_count"],
        _ => &[],
    };
    sample_name
        .strip_prefix(family.name.as_str())
        .is_some_and(|suffix| suffixes.contains(&suffix))
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(value)?,
    })
}

/// Parses `k="v",...}` and returns the labels and the text after the `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

/// Parses a sample value, including `+Inf`, `-Inf` and `NaN`.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Formats a sample value as the text format wants it.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

fn unescape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Escapes HELP text: backslash and newline.
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Writes `{k="v",...}` (nothing for no labels), escaping values.
pub fn write_labels<'a>(out: &mut String, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut first = true;
    for (key, value) in labels {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{key}=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_format_allows() {
        let text = "# HELP h_seconds A \\\\ histogram.\n# TYPE h_seconds histogram\n\
            h_seconds_bucket{a=\"x\\\"y\\\\z\\n\",le=\"0.5\"} 1\n\
            h_seconds_bucket{a=\"x\\\"y\\\\z\\n\",le=\"+Inf\"} 2\n\
            h_seconds_sum{a=\"x\\\"y\\\\z\\n\"} 1.25\nh_seconds_count{a=\"x\\\"y\\\\z\\n\"} 2\n\n\
            # TYPE g gauge\ng NaN\ng{b=\"1\",} +Inf 1700000000000\nother_thing 3\ngarbage{ 1\n";
        let (families, skipped) = parse(text);
        assert_eq!(skipped, 1);
        assert_eq!(families.len(), 3);
        let h = &families[0];
        assert_eq!(
            (h.name.as_str(), h.kind, h.help.as_str()),
            ("h_seconds", FamilyKind::Histogram, "A \\ histogram.")
        );
        assert_eq!(h.samples.len(), 4);
        assert_eq!(h.samples[0].label("a"), Some("x\"y\\z\n"));
        assert_eq!(h.samples[1].value, 2.0);
        assert!(families[1].samples[0].value.is_nan());
        assert_eq!(families[1].samples[1].value, f64::INFINITY);
        assert_eq!(families[2].kind, FamilyKind::Untyped);
    }

    #[test]
    fn written_labels_parse_back() {
        let mut line = String::from("m");
        write_labels(&mut line, [("a", "sl/ash\"q\\b\nn"), ("b", "")]);
        line.push_str(" 1.5");
        let sample = parse_sample(&line).expect("parses");
        assert_eq!(sample.label("a"), Some("sl/ash\"q\\b\nn"));
        assert_eq!(sample.label("b"), Some(""));
        assert_eq!(sample.value, 1.5);
    }
}

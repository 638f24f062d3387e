//! The HTML view of a [`LambdaReport`]: one self-contained page (`--html`).
//!
//! The report enters whole and leaves as one HTML document with the styles
//! (`assets/report.css`), the script (`assets/report.js`) and the report itself
//! inline: the JSON goes into a `<script type="application/json">` block and
//! the script renders everything from it — headline cards, the cold-start
//! breakdown, an icicle chart of the init import tree (width = cumulative
//! time, colour = origin, hover for details, click to zoom), the slowest
//! modules by self time, per-invocation latency and RSS plots with cold
//! starts and failures marked, and the findings. The page makes no network
//! request (a Content-Security-Policy of `default-src 'none'` enforces it), so
//! it opens the same from a laptop, a CI artifact or an air-gapped host.
//!
//! The only report text that reaches the HTML source is the JSON block and the
//! `<title>`. In the JSON every `<`, `>` and `&` is written as a `\u00XX`
//! escape, which JSON parsers read back as the same characters but which can
//! never close the script element (`</script>`) or open a comment (`<!--`).
//! The script then puts report text into the DOM only as text.

use super::LambdaReport;

/// The page's styles.
const STYLE: &str = include_str!("assets/report.css");

/// The page's script: reads the JSON block and renders the page.
const SCRIPT: &str = include_str!("assets/report.js");

/// Only inline styles and scripts and `data:` images; nothing is fetched.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/// The `id` of the element holding the report JSON.
pub const REPORT_DATA_ID: &str = "report-data";

/// The report as one self-contained HTML page.
pub fn html_page(report: &LambdaReport) -> String {
    let title = if report.function.name.is_empty() {
        "pyrometer report".to_owned()
    } else {
        format!("{} · pyrometer report", report.function.name)
    };
    let mut page = String::with_capacity(STYLE.len() + SCRIPT.len() + 64 * 1024);
    page.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"");
    page.push_str(CONTENT_SECURITY_POLICY);
    page.push_str("\">\n<title>");
    page.push_str(&escape_html(&title));
    page.push_str("</title>\n<style>\n");
    page.push_str(STYLE);
    page.push_str("</style>\n</head>\n<body data-render=\"pending\">\n");
    page.push_str(
        "<noscript><p>This report is drawn by JavaScript; its data is the JSON block \
         at the end of this file.</p></noscript>\n",
    );
    page.push_str("<pre id=\"render-errors\" hidden></pre>\n<main id=\"app\"></main>\n");
    page.push_str("<script type=\"application/json\" id=\"");
    page.push_str(REPORT_DATA_ID);
    page.push_str("\">");
    page.push_str(&script_safe_json(report));
    page.push_str("</script>\n<script>\n");
    page.push_str(SCRIPT);
    page.push_str("</script>\n</body>\n</html>\n");
    page
}

/// The report as JSON that is safe inside a `<script>` element: `<`, `>` and
/// `&` only occur inside JSON strings, where `\u003c`-style escapes mean the
/// same characters.
fn script_safe_json(report: &LambdaReport) -> String {
    // Serializing plain data with string keys cannot fail; should it ever, the
    // page says it holds no report rather than rendering a broken one.
    let json = serde_json::to_string(report).unwrap_or_else(|_| "null".to_owned());
    let mut safe = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => safe.push_str("\\u003c"),
            '>' => safe.push_str("\\u003e"),
            '&' => safe.push_str("\\u0026"),
            // Legal in JSON, but line terminators in older JavaScript parsers.
            '\u{2028}' => safe.push_str("\\u2028"),
            '\u{2029}' => safe.push_str("\\u2029"),
            c => safe.push(c),
        }
    }
    safe
}

/// Escapes text for an HTML text node or a quoted attribute.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The JSON text of the report-data block of a page written by [`html_page`],
/// as it stands in the page (still escaped); `None` if the page has none.
pub fn embedded_report_json(page: &str) -> Option<&str> {
    let open = format!("<script type=\"application/json\" id=\"{REPORT_DATA_ID}\">");
    let start = page.find(&open)? + open.len();
    let len = page[start..].find("</script>")?;
    Some(&page[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, Severity};
    use crate::report::fixture::realistic_report;

    const HOSTILE: &str = "</script><script>alert(1)</script><!--";

    fn hostile_report() -> LambdaReport {
        let mut report = realistic_report();
        report.function.name = format!("fn{HOSTILE}\"'&");
        let imports = report.environments[0]
            .init
            .imports
            .as_mut()
            .expect("imports");
        imports.modules[0].module = HOSTILE.to_owned();
        imports.modules[1].module = "</SCRIPT >\u{2028}x".to_owned();
        report.findings.push(Finding {
            plugin: "p".into(),
            rule: "r".into(),
            severity: Severity::Info,
            message: format!("{HOSTILE} <img src=x onerror=alert(2)>"),
            labels: vec![("k".into(), "<b>".into())],
        });
        report.plugin_failures.push(HOSTILE.into());
        report
    }

    #[test]
    fn the_embedded_json_round_trips() {
        let report = realistic_report();
        let page = html_page(&report);
        let json = embedded_report_json(&page).expect("report block");
        let back: LambdaReport = serde_json::from_str(json).expect("parses");
        assert_eq!(back, report);
    }

    #[test]
    fn hostile_text_cannot_break_out_of_the_script_element() {
        let report = hostile_report();
        let page = html_page(&report);
        assert!(!page.contains(HOSTILE));
        assert!(!page.contains("alert(1)</script>"));
        assert!(!page.to_ascii_lowercase().contains("</script >"));
        // Exactly the page's own two script elements close.
        assert_eq!(page.to_ascii_lowercase().matches("</script").count(), 2);
        assert_eq!(page.matches("<script").count(), 2);
        assert!(!page.contains("<!--"));
        assert!(page.contains("<title>fn&lt;/script&gt;&lt;script&gt;alert(1)"));
        let back: LambdaReport =
            serde_json::from_str(embedded_report_json(&page).expect("block")).expect("parses");
        assert_eq!(back, report, "the hostile names come back unchanged");
    }

    #[test]
    fn the_page_references_no_network_resource() {
        let page = html_page(&realistic_report());
        // The SVG namespace is a name, not a location: nothing fetches it.
        let without_namespace = page.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_namespace.contains("http://"), "an http reference");
        assert!(
            !without_namespace.contains("https://"),
            "an https reference"
        );
        for pattern in [
            "src=",
            "href=",
            "url(",
            "@import",
            "fetch(",
            "XMLHttpRequest",
            "//cdn",
        ] {
            assert!(!page.contains(pattern), "the page contains {pattern:?}");
        }
        assert!(page.contains("default-src 'none'"));
        for asset in [STYLE, SCRIPT] {
            assert!(!asset.to_ascii_lowercase().contains("</script"));
            assert!(!asset.to_ascii_lowercase().contains("</style"));
            assert!(!asset.to_ascii_lowercase().contains("<script"));
            assert!(!asset.contains("<!--"));
        }
    }

    #[test]
    fn an_empty_report_still_makes_a_page() {
        let page = html_page(&LambdaReport::default());
        assert!(page.contains("<title>pyrometer report</title>"));
        let back: LambdaReport =
            serde_json::from_str(embedded_report_json(&page).expect("block")).expect("parses");
        assert_eq!(back, LambdaReport::default());
    }
}

//! The terminal view of a [`ServiceSummary`]: what `pyrometer run` prints
//! when the service exits.
//!
//! The summary and the plugins' findings enter whole and leave as plain
//! text on any [`Write`]: start-up (time to ready, imports, slowest modules),
//! routes slowest first, throughput, event-loop lag, memory, worker restarts
//! and findings. Text from the service (routes, module names) is cleaned of
//! control characters and clipped.

use std::io::{self, Write};

use crate::model::Finding;
use crate::sidecar::ServiceSummary;

use super::terminal::{clean, clip, fmt_bytes, fmt_ms};

/// Routes listed at most.
const MAX_ROUTES_SHOWN: usize = 15;
/// Widest route column.
const ROUTE_COLUMNS: usize = 48;

/// Writes the view of `summary` and `findings` to `out`.
pub fn write_service(
    summary: &ServiceSummary,
    findings: &[Finding],
    out: &mut impl Write,
) -> io::Result<()> {
    let or_dash = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), fmt_ms);
    writeln!(
        out,
        "pyrometer run: {} over {:.1} s ({})",
        summary.framework.as_deref().map_or("service", clean_str),
        summary.duration_s,
        summary.python.as_deref().unwrap_or("no probe data"),
    )?;
    writeln!(
        out,
        "  start-up   {} to ready ({}), imports {}",
        or_dash(summary.startup_ms),
        summary.ready_reason.as_deref().unwrap_or("never ready"),
        or_dash(summary.import_phase_ms),
    )?;
    for (module, ms) in summary.slowest_imports.iter().take(5) {
        writeln!(out, "    {:>12}  {}", fmt_ms(*ms), clip(&clean(module), 60))?;
    }
    writeln!(
        out,
        "  requests   {} ({:.1}/s){}",
        summary.requests,
        summary.throughput_rps,
        summary
            .slowest_route
            .as_deref()
            .map(|r| format!(", slowest: {}", clip(&clean(r), ROUTE_COLUMNS)))
            .unwrap_or_default(),
    )?;
    if !summary.routes.is_empty() {
        writeln!(
            out,
            "    {:<width$} {:>8} {:>6} {:>11} {:>11} {:>11}",
            "route",
            "requests",
            "5xx",
            "mean",
            "p99 ≤",
            "max",
            width = ROUTE_COLUMNS
        )?;
    }
    for r in summary.routes.iter().take(MAX_ROUTES_SHOWN) {
        let name = clip(&clean(&format!("{} {}", r.method, r.route)), ROUTE_COLUMNS);
        writeln!(
            out,
            "    {name:<width$} {:>8} {:>6} {:>11} {:>11} {:>11}",
            r.requests,
            r.server_errors,
            fmt_ms(r.mean_ms),
            or_dash(r.p99_ms),
            fmt_ms(r.max_ms),
            width = ROUTE_COLUMNS
        )?;
    }
    if summary.routes.len() > MAX_ROUTES_SHOWN {
        writeln!(
            out,
            "    … {} more routes (see --json)",
            summary.routes.len() - MAX_ROUTES_SHOWN
        )?;
    }
    if let Some(lag) = summary.loop_lag_max_ms {
        writeln!(out, "  event loop worst lag {}", fmt_ms(lag))?;
    }
    let bytes = |b: Option<u64>| b.map_or_else(|| "–".to_owned(), |b| fmt_bytes(b as f64));
    writeln!(
        out,
        "  memory     RSS {} → {} (peak {}), worker restarts {}",
        bytes(summary.rss_start_bytes),
        bytes(summary.rss_end_bytes),
        fmt_bytes(summary.rss_peak_bytes as f64),
        summary.worker_restarts,
    )?;
    for f in findings {
        writeln!(
            out,
            "  {:?} [{}/{}] {}",
            f.severity,
            clean(&f.plugin),
            clean(&f.rule),
            clip(&clean(&f.message), 200)
        )?;
    }
    Ok(())
}

fn clean_str(s: &str) -> &str {
    if s.chars().any(char::is_control) {
        "service"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::RouteSummary;

    #[test]
    fn routes_print_slowest_first_with_hostile_text_cleaned() {
        let summary = ServiceSummary {
            python: Some("cpython-3.11.7".into()),
            framework: Some("flask".into()),
            startup_ms: Some(420.0),
            ready_reason: Some("request".into()),
            import_phase_ms: Some(300.0),
            slowest_imports: vec![("flask".into(), 120.0)],
            duration_s: 10.0,
            requests: 30,
            throughput_rps: 3.0,
            slowest_route: Some("GET /slow".into()),
            routes: vec![
                RouteSummary {
                    method: "GET".into(),
                    route: "/slow".into(),
                    requests: 10,
                    server_errors: 0,
                    mean_ms: 200.0,
                    p99_ms: Some(250.0),
                    max_ms: 230.0,
                },
                RouteSummary {
                    method: "GET".into(),
                    route: "/\u{1b}[31mred".into(),
                    requests: 20,
                    server_errors: 2,
                    mean_ms: 1.0,
                    p99_ms: None,
                    max_ms: 3.0,
                },
            ],
            routes_dropped: 0,
            loop_lag_max_ms: None,
            rss_start_bytes: Some(1 << 20),
            rss_end_bytes: Some(2 << 20),
            rss_peak_bytes: 3 << 20,
            worker_restarts: 1,
            wrapped_calls: 0,
            rows_dropped: 0,
            imports: None,
        };
        let mut out = Vec::new();
        write_service(&summary, &[], &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let slow = text.find("GET /slow ").expect("slow route");
        let red = text.find("GET /\u{fffd}[31mred").expect("cleaned route");
        assert!(slow < red, "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("420"), "{text}");
        assert!(text.contains("worker restarts 1"), "{text}");
    }
}

//! The HTML report in a real browser: Debian's `chromium`, headless.
//!
//! The page is written for a realistic report (three environments, a few
//! hundred imported modules, a slow module, a failed import, a leak, findings,
//! hostile module names) and loaded with `--dump-dom`, which prints the DOM
//! after the page's script ran. The script marks `<body data-render="ok">` when
//! it rendered everything and writes any error (including uncaught ones, via
//! `window.onerror`) into `#render-errors`; the test asserts on both and counts
//! the chart elements.
//!
//! Chromium must be installed: the test fails, with the command that installs
//! it, rather than skip. Set `PYROMETER_HTML_SCREENSHOT=/path/shot.png` to also
//! save a screenshot of the page, and the page itself beside it
//! (`/path/shot.html`), for a human to look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyrometer::model::{
    Finding, FunctionInfo, GcGeneration, ImportProfile, ImportedModule, InitBreakdown, InitReport,
    Invocation, Origin, PythonInit, PythonRuntime, Severity, Status,
};
use pyrometer::report::{EnvironmentRun, LambdaReport, html_page};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);
const HOSTILE: &str = "</script><script>alert(1)</script>";

fn chromium() -> &'static Path {
    let path = Path::new(CHROMIUM);
    assert!(
        path.exists(),
        "{CHROMIUM} is missing; install it with: apt-get install -y chromium"
    );
    path
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("pyrometer-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless chromium on `page` with `extra` arguments; returns stdout.
fn run_chromium(page: &Path, extra: &[String]) -> String {
    let profile = TempDir::new("chromium-profile");
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start chromium");
    let started = Instant::now();
    // Read the pipes on threads so a chatty browser cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().expect("stdout thread").expect("read stdout");
    let stderr = err.join().expect("stderr thread").expect("read stderr");
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    stdout
}

/// Deterministic pseudo-random numbers, so figures look measured but the test repeats.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// An import tree shaped like a real app's: stdlib, a layer SDK, third-party
/// packages, the function's own modules, one slow module and one failure.
fn import_profile() -> ImportProfile {
    let mut rng = Lcg(42);
    let mut modules: Vec<ImportedModule> = Vec::new();
    let add = |modules: &mut Vec<ImportedModule>,
               name: &str,
               parent: Option<usize>,
               self_us: u64,
               origin: Origin| {
        modules.push(ImportedModule {
            module: name.to_owned(),
            parent,
            self_us,
            cumulative_us: self_us,
            origin,
            error: None,
        });
        modules.len() - 1
    };
    for (package, origin, count) in [
        ("json", Origin::Stdlib, 4),
        ("logging", Origin::Stdlib, 6),
        ("email", Origin::Stdlib, 14),
        ("http", Origin::Stdlib, 8),
        ("boto3", Origin::Layer, 10),
    ] {
        let top = add(&mut modules, package, None, 300 + rng.below(2_000), origin);
        let mut last = top;
        for i in 0..count {
            // Every third module nests under the previous one: depth varies.
            let parent = if i % 3 == 2 { last } else { top };
            let us = 50 + rng.below(1_500);
            last = add(
                &mut modules,
                &format!("{package}.mod{i}"),
                Some(parent),
                us,
                origin,
            );
        }
    }
    let boto3_last = modules.len() - 1;
    let botocore = add(
        &mut modules,
        "botocore",
        Some(boto3_last),
        4_000,
        Origin::Layer,
    );
    for i in 0..60 {
        let us = 100 + rng.below(2_500);
        let parent = if i % 10 == 9 { botocore + i } else { botocore };
        add(
            &mut modules,
            &format!("botocore.part{i}"),
            Some(parent),
            us,
            Origin::Layer,
        );
    }
    let _ = add(
        &mut modules,
        "_ssl",
        Some(botocore + 3),
        2_100,
        Origin::Builtin,
    );
    let app = add(&mut modules, "app", None, 1_200, Origin::FunctionCode);
    let templates = add(
        &mut modules,
        "app.templates",
        Some(app),
        182_000,
        Origin::FunctionCode,
    );
    let _ = add(
        &mut modules,
        "jinja2",
        Some(templates),
        6_000,
        Origin::SitePackages,
    );
    let pydantic = add(
        &mut modules,
        "pydantic",
        Some(app),
        9_000,
        Origin::SitePackages,
    );
    for i in 0..80 {
        let us = 40 + rng.below(900);
        let parent = if i % 8 == 7 { pydantic + i } else { pydantic };
        add(
            &mut modules,
            &format!("pydantic.v1.fields_and_validators.module_{i}"),
            Some(parent),
            us,
            Origin::SitePackages,
        );
    }
    let failed = add(
        &mut modules,
        "simplejson",
        Some(app),
        90,
        Origin::SitePackages,
    );
    modules[failed].error = Some("ModuleNotFoundError".into());
    let _ = add(&mut modules, HOSTILE, Some(app), 30, Origin::FunctionCode);
    for i in (0..modules.len()).rev() {
        if let Some(p) = modules[i].parent {
            let cumulative = modules[i].cumulative_us;
            modules[p].cumulative_us += cumulative;
        }
    }
    ImportProfile { modules }
}

fn report() -> LambdaReport {
    let imports = import_profile();
    let handler_module = imports.modules.iter().position(|m| m.module == "app");
    let total_us: u64 = imports
        .modules
        .iter()
        .filter(|m| m.parent.is_none())
        .map(|m| m.cumulative_us)
        .sum();
    let handler_us = handler_module.map_or(0, |i| imports.modules[i].cumulative_us);
    let environments = (0..3)
        .map(|env| {
            let interpreter_ms = 17.5 + env as f64;
            let init_ms = interpreter_ms + total_us as f64 / 1e3 + 11.0;
            EnvironmentRun {
                init: InitReport {
                    init_type: "on-demand".into(),
                    init_duration_ms: Some(init_ms),
                    init_status: Some("success".into()),
                    python: Some(PythonInit {
                        python: "cpython-3.12.3".into(),
                        probe_init_us: 380,
                        modules_before_probe: 31,
                        modules_at_ready: 31 + imports.modules.len() as u64,
                        import_phase_us: total_us,
                        handler_load_us: Some(handler_us),
                        handler: Some("app.handler".into()),
                        handler_module,
                        gc_collections: 12,
                        gc_pause_us: 1_900,
                        ..PythonInit::default()
                    }),
                    breakdown: Some(InitBreakdown {
                        interpreter_ms,
                        imports_ms: (total_us - handler_us) as f64 / 1e3,
                        handler_module_ms: handler_us as f64 / 1e3,
                        rest_ms: 11.0,
                    }),
                    imports: Some(imports.clone()),
                    ..InitReport::default()
                },
                invocations: (0..15)
                    .map(|i| {
                        let cold = i == 0;
                        let duration_ms = if cold {
                            91.0
                        } else {
                            5.0 + ((i * 7 + env * 3) % 11) as f64 * 0.75
                        };
                        let rss = 44_040_192.0 + env as f64 * 524_288.0 + i as f64 * 393_216.0;
                        let status = match (env, i) {
                            (1, 9) => Status::Error,
                            (2, 4) => Status::Timeout,
                            _ => Status::Success,
                        };
                        Invocation {
                            request_id: format!("{env}-{i}"),
                            cold_start: cold,
                            status,
                            duration_ms,
                            billed_duration_ms: Some(duration_ms.ceil()),
                            max_memory_used_mb: Some(71.0),
                            memory_size_mb: Some(1024.0),
                            rss_bytes: Some(rss),
                            gc_collections: 2 + (i % 3) as u32,
                            gc_pause_ms: Some(0.25),
                            error_type: (status == Status::Error).then(|| "KeyError".into()),
                            partial: status == Status::Timeout,
                            python: Some(PythonRuntime {
                                gc: [
                                    GcGeneration {
                                        collections: 2,
                                        pause_ns: 200_000,
                                        ..GcGeneration::default()
                                    },
                                    GcGeneration {
                                        collections: (i % 3) as u64,
                                        pause_ns: 50_000,
                                        ..GcGeneration::default()
                                    },
                                    GcGeneration::default(),
                                ],
                                rss_bytes: Some(rss as u64),
                                ..PythonRuntime::default()
                            }),
                            ..Invocation::default()
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    LambdaReport {
        function: FunctionInfo {
            name: "checkout-service".into(),
            version: "$LATEST".into(),
            runtime: "python3.12".into(),
            memory_size_mb: 1024,
        },
        handler: "app.py:handler".into(),
        runtime_client: "builtin".into(),
        environments,
        findings: vec![
            Finding {
                plugin: "slow-imports".into(),
                rule: "slow-import".into(),
                severity: Severity::Warning,
                message: "app.templates takes 182.0 ms to import (self time)".into(),
                labels: vec![("module".into(), "app.templates".into())],
            },
            Finding {
                plugin: "leak-detector".into(),
                rule: "memory-growth".into(),
                severity: Severity::Critical,
                message: "RSS grows 384 KiB per invocation in every environment".into(),
                labels: vec![],
            },
            Finding {
                plugin: "hostile".into(),
                rule: HOSTILE.into(),
                severity: Severity::Info,
                message: format!("{HOSTILE}<img src=x onerror=alert(2)>"),
                labels: vec![("k".into(), HOSTILE.into())],
            },
        ],
        plugin_failures: vec!["cost-estimator: trap: wasm trap: out of fuel".into()],
        ..LambdaReport::default()
    }
    .summarized()
}

fn write_page(dir: &TempDir, name: &str, report: &LambdaReport) -> PathBuf {
    let path = dir.0.join(name);
    std::fs::write(&path, html_page(report)).expect("write page");
    path
}

fn assert_rendered(dom: &str) {
    assert!(
        dom.contains("data-render=\"ok\""),
        "the page did not mark itself rendered:\n{}",
        render_errors(dom)
    );
    // The error box is still empty and hidden (the script's own source, also
    // in the dump, mentions "render error", so the box itself is checked).
    assert!(
        dom.contains("<pre id=\"render-errors\" hidden=\"\"></pre>"),
        "{}",
        render_errors(dom)
    );
}

fn render_errors(dom: &str) -> &str {
    dom.find("<pre id=\"render-errors\"")
        .map_or(dom, |at| &dom[at..(at + 2_000).min(dom.len())])
}

#[test]
fn the_html_report_renders_in_chromium_without_errors() {
    let report = report();
    let dir = TempDir::new("report-html");
    let page = write_page(&dir, "report.html", &report);
    let dom = run_chromium(&page, &["--dump-dom".to_owned()]);
    assert_rendered(&dom);

    let modules = report.environments[0]
        .init
        .imports
        .as_ref()
        .map_or(0, |p| p.modules.len());
    assert_eq!(
        dom.matches("class=\"icicle-node").count(),
        modules,
        "one icicle element per module"
    );
    let invocations: usize = report
        .environments
        .iter()
        .map(|e| e.invocations.len())
        .sum();
    let latency = &dom[dom.find("id=\"latency-plot\"").expect("latency plot")..];
    let latency = &latency[..latency.find("</svg>").expect("end of plot")];
    assert_eq!(
        latency.matches("<circle class=\"pt").count(),
        invocations,
        "one latency point per invocation"
    );
    assert!(dom.contains("id=\"rss-plot\""));
    assert!(dom.contains("checkout-service"));
    assert!(dom.contains("app.templates"));
    assert!(dom.contains("memory-growth"));
    assert!(dom.contains("cost-estimator: trap"));
    // Hostile text is shown as text, never parsed as markup.
    assert!(dom.contains("&lt;/script&gt;&lt;script&gt;alert(1)"));
    assert!(!dom.contains("<script>alert(1)"));
    assert!(!dom.contains("<img src=\"x\""));

    if let Some(shot) = std::env::var_os("PYROMETER_HTML_SCREENSHOT") {
        let shot = PathBuf::from(shot);
        std::fs::copy(&page, shot.with_extension("html")).expect("keep the page");
        run_chromium(
            &page,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2000".to_owned(),
                "--hide-scrollbars".to_owned(),
            ],
        );
    }
}

/// Clicks, hovers and switches the way a user would, then writes what the
/// page showed into `#interaction-result` as JSON (or the error).
const INTERACTION_SCRIPT: &str = r##"<script>
(function () {
  const out = document.createElement("pre");
  out.id = "interaction-result";
  try {
    const index = Number(document.body.getAttribute("data-test-module"));
    const rect = document.querySelector('.icicle-node[data-index="' + index + '"] rect');
    rect.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    const crumbs = document.querySelector(".breadcrumb").textContent;
    const hidden = document.querySelectorAll('.icicle-node[display="none"]').length;
    rect.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: 200, clientY: 200 }));
    const tip = document.querySelector(".tooltip");
    const tooltip = tip.hidden ? null : tip.textContent;
    document.getElementById("latency-scale").click();
    const select = document.getElementById("icicle-env");
    select.value = "1";
    select.dispatchEvent(new Event("change"));
    out.textContent = JSON.stringify({
      crumbs: crumbs,
      hidden: hidden,
      tooltip: tooltip,
      scale: document.getElementById("latency-scale").textContent,
      nodes: document.querySelectorAll(".icicle-node").length,
      latencyPoints: document.querySelectorAll("#latency-plot circle").length,
    });
  } catch (e) {
    out.textContent = "interaction error: " + (e && e.stack ? e.stack : e);
  }
  document.body.appendChild(out);
})();
</script>
</body>"##;

#[test]
fn the_html_report_responds_to_clicks_and_hovers() {
    let report = report();
    let modules = &report.environments[0]
        .init
        .imports
        .as_ref()
        .expect("imports")
        .modules;
    let app = modules.iter().position(|m| m.module == "app").expect("app");
    let page = html_page(&report)
        .replacen(
            "<body data-render=\"pending\">",
            &format!("<body data-render=\"pending\" data-test-module=\"{app}\">"),
            1,
        )
        .replacen("</body>", INTERACTION_SCRIPT, 1);
    let dir = TempDir::new("report-html-interaction");
    let path = dir.0.join("interaction.html");
    std::fs::write(&path, page).expect("write page");
    let dom = run_chromium(&path, &["--dump-dom".to_owned()]);
    assert_rendered(&dom);

    let start = dom
        .find("<pre id=\"interaction-result\">")
        .expect("interaction result")
        + "<pre id=\"interaction-result\">".len();
    let text = &dom[start..start + dom[start..].find("</pre>").expect("end")];
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let result: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
    assert_eq!(result["crumbs"], "all imports›app", "zoomed into app");
    let outside_app = modules.len()
        - modules
            .iter()
            .enumerate()
            .filter(|&(i, _)| {
                let mut at = Some(i);
                while let Some(m) = at {
                    if m == app {
                        return true;
                    }
                    at = modules[m].parent;
                }
                false
            })
            .count();
    assert_eq!(result["hidden"], outside_app, "modules outside app hidden");
    let tooltip = result["tooltip"].as_str().expect("tooltip shown");
    assert!(tooltip.starts_with("app"), "{tooltip}");
    assert!(tooltip.contains("cumulative"), "{tooltip}");
    assert!(tooltip.contains("function-code"), "{tooltip}");
    assert_eq!(result["scale"], "linear scale", "switched to log scale");
    assert_eq!(result["nodes"], modules.len(), "environment #2 drawn");
    assert_eq!(result["latencyPoints"], 45);
}

#[test]
fn an_empty_report_renders_in_chromium() {
    let dir = TempDir::new("report-html-empty");
    let empty = LambdaReport::default().summarized();
    let page = write_page(&dir, "empty.html", &empty);
    let dom = run_chromium(&page, &["--dump-dom".to_owned()]);
    assert_rendered(&dom);
    assert!(dom.contains("No environment ran."));
    assert!(dom.contains("No import profile"));
}

// Renders the pyrometer report from the JSON embedded in this page.
//
// Everything the page shows comes from the JSON block (#report-data, a script
// element of type application/json); text from the report only ever enters
// the DOM through textContent or attribute values, never as markup, so module
// names and messages cannot inject anything. When rendering succeeds, the
// body gets data-render="ok"; any error is written into #render-errors (and
// data-render="error"), which is what the headless-browser test looks for.
"use strict";
(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const ORIGINS = [
    ["function-code", "function code"],
    ["layer", "layer"],
    ["site-packages", "site-packages"],
    ["stdlib", "stdlib"],
    ["builtin", "builtin"],
  ];
  const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
  const MIB = 1024 * 1024;

  function reportError(message) {
    const box = document.getElementById("render-errors");
    if (box) {
      box.hidden = false;
      box.textContent += "render error: " + message + "\n";
    }
    document.body.setAttribute("data-render", "error");
  }
  window.addEventListener("error", function (event) {
    reportError(event.message + " (" + event.filename + ":" + event.lineno + ")");
  });
  window.addEventListener("unhandledrejection", function (event) {
    reportError(String(event.reason));
  });

  // ---- small helpers -------------------------------------------------------

  function el(tag, attrs) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (let i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (let i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(key, String(value));
    }
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(node, c); });
    } else if (typeof child === "string" || typeof child === "number") {
      node.appendChild(document.createTextNode(String(child)));
    } else {
      node.appendChild(child);
    }
  }
  function num(v) {
    return typeof v === "number" && isFinite(v) ? v : null;
  }
  function fmtNum(v) {
    if (num(v) === null) return "–";
    return Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1);
  }
  function fmtMs(ms) {
    return num(ms) === null ? "–" : fmtNum(ms) + " ms";
  }
  // Axis ticks are round numbers: no trailing zeros.
  function fmtTickMs(ms) {
    return Number(ms.toPrecision(6)).toString() + " ms";
  }
  function fmtUs(us) {
    return num(us) === null ? "–" : fmtMs(us / 1000);
  }
  function fmtBytes(bytes) {
    if (num(bytes) === null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = Math.abs(bytes);
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    const sign = bytes < 0 ? "−" : "";
    return sign + (unit === 0 ? value.toFixed(0) : value.toFixed(1)) + " " + units[unit];
  }
  function plural(n, noun) {
    return n + " " + noun + (n === 1 ? "" : "s");
  }
  function pct(part, whole) {
    return whole > 0 ? Math.round((part / whole) * 100) + "%" : "";
  }
  function sum(values) {
    return values.reduce(function (a, b) { return a + b; }, 0);
  }
  function list(v) {
    return Array.isArray(v) ? v : [];
  }
  function panel(title, note, tools) {
    const head = el("div", { class: "panel-head" }, el("h2", null, title));
    if (note) head.appendChild(el("span", { class: "note" }, note));
    if (tools) head.appendChild(el("div", { class: "tools" }, tools));
    return el("section", { class: "panel" }, head);
  }
  function rssAtEnd(inv) {
    if (num(inv.rss_bytes) !== null) return inv.rss_bytes;
    if (inv.python && num(inv.python.rss_bytes) !== null) return inv.python.rss_bytes;
    return null;
  }
  // Least-squares slope per invocation, as the terminal view computes it.
  function slope(values) {
    const pts = [];
    values.forEach(function (v, i) { if (num(v) !== null) pts.push([i, v]); });
    if (pts.length < 2) return 0;
    const mx = sum(pts.map(function (p) { return p[0]; })) / pts.length;
    const my = sum(pts.map(function (p) { return p[1]; })) / pts.length;
    let sxx = 0;
    let sxy = 0;
    pts.forEach(function (p) {
      sxx += (p[0] - mx) * (p[0] - mx);
      sxy += (p[0] - mx) * (p[1] - my);
    });
    return sxx > 0 ? sxy / sxx : 0;
  }
  // About five round tick values covering [lo, hi].
  function ticks(lo, hi) {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / 5;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return s >= raw; }) || mag * 10;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
    return out;
  }

  // ---- sections --------------------------------------------------------------

  function header(report) {
    const fn = report.function || {};
    const envs = list(report.environments);
    const counts = envs.map(function (e) { return list(e.invocations).length; });
    const total = sum(counts);
    const run = counts.length > 0 && counts.every(function (c) { return c === counts[0]; })
      ? plural(counts.length, "environment") + " × " + plural(counts[0], "invocation")
      : plural(counts.length, "environment") + ", " + plural(total, "invocation");
    const python = envs.map(function (e) { return e.init && e.init.python && e.init.python.python; }).find(Boolean);
    function chip(label, value) {
      return value ? el("span", { class: "chip" }, label ? label + " " : "", el("b", null, String(value))) : null;
    }
    return el("header", null,
      el("div", { class: "brand" }, "pyrometer lambda"),
      el("h1", null, fn.name || "function"),
      el("div", { class: "meta" },
        chip("version", fn.version),
        chip("", fn.runtime),
        chip("memory", fn.memory_size_mb ? fn.memory_size_mb + " MB" : null),
        chip("handler", report.handler),
        chip("runtime client", report.runtime_client),
        chip("", python),
        chip("", run)));
  }

  function cards(report) {
    const s = report.summary || {};
    const d = function (x) { return x || {}; };
    const findings = list(report.findings);
    const bySeverity = function (sev) { return findings.filter(function (f) { return f.severity === sev; }).length; };
    const envs = list(report.environments);
    const growth = envs.map(function (e) { return slope(list(e.invocations).map(rssAtEnd)); });
    const worstGrowth = growth.length ? Math.max.apply(null, growth) : 0;
    function card(label, value, sub, bad) {
      return el("div", { class: "card" + (bad ? " bad" : "") },
        el("div", { class: "label" }, label), el("div", { class: "value" }, value), el("div", { class: "sub" }, sub || ""));
    }
    const warm = d(s.warm_invocation_ms);
    return el("div", { class: "cards" },
      card("Init", d(s.init_ms).count ? fmtMs(d(s.init_ms).p50) : "–",
        d(s.init_ms).count > 1 ? "p50 of " + d(s.init_ms).count + " · max " + fmtMs(d(s.init_ms).max) : "cold start"),
      card("Cold invocation", d(s.cold_invocation_ms).count ? fmtMs(d(s.cold_invocation_ms).p50) : "–",
        "p50 · max " + fmtMs(d(s.cold_invocation_ms).max)),
      card("Warm invocation", warm.count ? fmtMs(warm.p50) : "–",
        warm.count ? "p95 " + fmtNum(warm.p95) + " · p99 " + fmtNum(warm.p99) + " · max " + fmtNum(warm.max) : "none"),
      card("Max RSS", fmtBytes(num(s.max_rss_bytes)),
        worstGrowth ? (worstGrowth > 0 ? "+" : "") + fmtBytes(worstGrowth) + " per invocation" : "end of invocation"),
      card("Errors", String(s.errors || 0), "of " + plural(s.invocations || 0, "invocation"), (s.errors || 0) > 0),
      card("GC", String(s.gc_collections || 0), "collections · pause " + fmtMs(s.gc_pause_ms || 0)),
      card("Findings", String(findings.length),
        [bySeverity("critical") + " critical", bySeverity("warning") + " warning", bySeverity("info") + " info"].join(" · "),
        bySeverity("critical") > 0));
  }

  function coldStart(report) {
    const section = panel("Cold start", "where init time went, per execution environment");
    const envs = list(report.environments);
    if (envs.length === 0) {
      section.appendChild(el("p", { class: "empty" }, "No environment ran."));
      return section;
    }
    const parts = [
      ["interpreter_ms", "interpreter", "bg-interpreter"],
      ["imports_ms", "imports", "bg-imports"],
      ["handler_module_ms", "handler module", "bg-handler"],
      ["rest_ms", "rest", "bg-rest"],
    ];
    section.appendChild(el("div", { class: "legend" }, parts.map(function (p) {
      return el("span", null, el("i", { class: "swatch " + p[2] }), p[1]);
    })));
    envs.forEach(function (env, n) {
      const init = env.init || {};
      const b = init.breakdown;
      const row = el("div", { class: "init-row" },
        el("div", { class: "env" }, "#" + (n + 1), el("small", null, init.init_type || "")),
        el("div", { class: "total" }, fmtMs(num(init.init_duration_ms))));
      const failed = init.error_type || (init.init_status && init.init_status !== "success");
      if (b) {
        const values = parts.map(function (p) { return Math.max(0, num(b[p[0]]) || 0); });
        const whole = sum(values);
        const bar = el("div", { class: "init-bar" });
        values.forEach(function (v, i) {
          const seg = el("div", { class: parts[i][2], title: parts[i][1] + ": " + fmtMs(v) + " (" + pct(v, whole) + ")" });
          seg.style.width = (whole > 0 ? (v / whole) * 100 : 0) + "%";
          bar.appendChild(seg);
        });
        row.appendChild(bar);
        row.appendChild(el("div", { class: "init-parts" }, values.map(function (v, i) {
          return el("span", null, parts[i][1] + " ", el("b", null, fmtMs(v)), " " + pct(v, whole));
        })));
      } else {
        row.appendChild(el("div", { class: "empty" }, "no breakdown (the probe did not run)"));
      }
      if (failed) {
        row.appendChild(el("div", { class: "init-error" },
          "init failed: " + (init.error_type || "unknown error") + " (status " + (init.init_status || "unknown") + ")"));
      }
      section.appendChild(row);
    });
    const py = envs.map(function (e) { return e.init && e.init.python; }).find(Boolean);
    if (py) {
      const facts = [
        (py.modules_at_ready || 0) + " modules at ready (" + (py.modules_before_probe || 0) + " before the probe)",
        "probe's own cost " + fmtUs(py.probe_init_us || 0),
        "GC during init: " + plural(py.gc_collections || 0, "collection") + ", " + fmtUs(py.gc_pause_us || 0),
      ];
      if (py.error) facts.push("handler import failed: " + py.error);
      section.appendChild(el("div", { class: "facts" }, facts.join(" · ")));
    }
    return section;
  }

  // ---- import icicle ------------------------------------------------------------

  function imports(report) {
    const envs = list(report.environments);
    const withProfile = [];
    envs.forEach(function (env, n) {
      const profile = env.init && env.init.imports;
      if (profile && list(profile.modules).length > 0) withProfile.push(n);
    });
    const body = el("div");
    let tools = null;
    if (withProfile.length > 1) {
      tools = el("select", { id: "icicle-env", "aria-label": "environment" }, withProfile.map(function (n) {
        return el("option", { value: n }, "environment #" + (n + 1));
      }));
      tools.addEventListener("change", function () { showProfile(body, envs[Number(tools.value)], Number(tools.value)); });
    }
    const section = panel("Imports at cold start", "width = cumulative time · click to zoom · hover for details", tools);
    section.appendChild(body);
    if (withProfile.length === 0) {
      body.appendChild(el("p", { class: "empty" }, "No import profile: the probe did not run."));
    } else {
      showProfile(body, envs[withProfile[0]], withProfile[0]);
    }
    return section;
  }

  function importTree(modules) {
    const parent = modules.map(function (m, i) {
      const p = m.parent;
      // Parents precede children; anything else is read as top level, which
      // keeps every walk finite whatever the file holds.
      return Number.isInteger(p) && p >= 0 && p < i ? p : null;
    });
    const children = modules.map(function () { return []; });
    const roots = [];
    parent.forEach(function (p, i) { if (p === null) roots.push(i); else children[p].push(i); });
    const depth = [];
    parent.forEach(function (p, i) { depth[i] = p === null ? 0 : depth[p] + 1; });
    const cum = modules.map(function (m) { return Math.max(0, num(m.cumulative_us) || 0); });
    return { parent: parent, children: children, roots: roots, depth: depth, cum: cum };
  }

  function showProfile(body, env, envIndex) {
    body.textContent = "";
    const profile = env.init.imports;
    const modules = list(profile.modules);
    const tree = importTree(modules);
    const handlerIndex = env.init.python ? env.init.python.handler_module : null;
    const total = sum(tree.roots.map(function (r) { return tree.cum[r]; }));
    const W = 1200;
    const ROW = 22;

    body.appendChild(el("div", { class: "legend" },
      ORIGINS.map(function (o) { return el("span", null, el("i", { class: "swatch o-" + o[0] }), o[1]); }),
      el("span", null, el("i", { class: "swatch", style: "border:2px solid var(--text)" }), "handler module"),
      el("span", null, el("i", { class: "swatch", style: "border:2px solid var(--error)" }), "failed import"),
      el("span", null, plural(modules.length, "module") + " · " + fmtUs(total) + " in imports (environment #" + (envIndex + 1) + ")")));
    const crumbs = el("div", { class: "breadcrumb" });
    body.appendChild(crumbs);

    const chart = svg("svg", { class: "icicle", id: "icicle", role: "img", "aria-label": "import icicle chart" });
    const nodes = modules.map(function (m, i) {
      const classes = ["icicle-node", "o-" + (m.origin || "stdlib")];
      if (m.error) classes.push("failed");
      if (i === handlerIndex) classes.push("handler");
      const g = svg("g", { class: classes.join(" "), "data-index": i }, svg("rect", { height: ROW - 1 }), svg("text", { dy: "0.32em" }));
      chart.appendChild(g);
      return g;
    });
    body.appendChild(chart);

    const tooltip = el("div", { class: "tooltip", hidden: true });
    body.appendChild(tooltip);

    function layout(focus) {
      const x = new Array(modules.length).fill(null);
      const w = new Array(modules.length).fill(0);
      const top = focus === null ? tree.roots : [focus];
      const span = sum(top.map(function (r) { return tree.cum[r]; })) || 1;
      const scale = W / span;
      const base = focus === null ? 0 : tree.depth[focus];
      const stack = [];
      let cursor = 0;
      top.forEach(function (r) {
        x[r] = cursor;
        w[r] = tree.cum[r] * scale;
        cursor += w[r];
        stack.push(r);
      });
      let maxDepth = 0;
      while (stack.length) {
        const v = stack.pop();
        maxDepth = Math.max(maxDepth, tree.depth[v] - base);
        const kids = tree.children[v];
        const kidsCum = sum(kids.map(function (k) { return tree.cum[k]; }));
        // Children that add up to more than their parent are squeezed into it.
        const squeeze = kidsCum > tree.cum[v] && kidsCum > 0 ? tree.cum[v] / kidsCum : 1;
        let at = x[v];
        kids.forEach(function (k) {
          x[k] = at;
          w[k] = tree.cum[k] * squeeze * scale;
          at += w[k];
          stack.push(k);
        });
      }
      chart.setAttribute("viewBox", "0 0 " + W + " " + (maxDepth + 1) * ROW);
      nodes.forEach(function (g, i) {
        if (x[i] === null) {
          g.setAttribute("display", "none");
          return;
        }
        g.removeAttribute("display");
        const y = (tree.depth[i] - base) * ROW;
        const rect = g.firstChild;
        rect.setAttribute("x", x[i].toFixed(2));
        rect.setAttribute("y", y);
        rect.setAttribute("width", Math.max(w[i], 0).toFixed(2));
        const text = g.lastChild;
        const fits = Math.floor((w[i] - 8) / 7);
        const name = modules[i].module || "?";
        text.setAttribute("x", (x[i] + 4).toFixed(2));
        text.setAttribute("y", y + ROW / 2);
        text.textContent = fits >= 3 ? (name.length <= fits ? name : name.slice(0, fits - 1) + "…") : "";
      });
      crumbs.textContent = "";
      const path = [];
      for (let at = focus; at !== null; at = tree.parent[at]) path.unshift(at);
      const all = el("a", { role: "button" }, "all imports");
      all.addEventListener("click", function () { layout(null); });
      crumbs.appendChild(all);
      path.forEach(function (i) {
        crumbs.appendChild(el("span", { class: "sep" }, "›"));
        const a = el("a", { role: "button" }, modules[i].module || "?");
        a.addEventListener("click", function () { layout(i); });
        crumbs.appendChild(a);
      });
      current = focus;
    }
    let current = null;
    layout(null);

    chart.addEventListener("click", function (event) {
      const g = event.target.closest ? event.target.closest(".icicle-node") : null;
      if (!g) return;
      const i = Number(g.getAttribute("data-index"));
      layout(i === current ? tree.parent[i] : i);
    });
    chart.addEventListener("mousemove", function (event) {
      const g = event.target.closest ? event.target.closest(".icicle-node") : null;
      if (!g) {
        tooltip.hidden = true;
        return;
      }
      const i = Number(g.getAttribute("data-index"));
      const m = modules[i];
      const rows = [
        ["self", fmtUs(num(m.self_us))],
        ["cumulative", fmtUs(num(m.cumulative_us)) + (total > 0 ? " (" + pct(tree.cum[i], total) + " of imports)" : "")],
        ["origin", m.origin || "–"],
        ["imported by", tree.parent[i] === null ? "top level" : modules[tree.parent[i]].module],
        ["imports", plural(tree.children[i].length, "module")],
      ];
      tooltip.textContent = "";
      tooltip.appendChild(el("div", { class: "name" }, m.module || "?"));
      if (i === handlerIndex) tooltip.appendChild(el("div", null, "the handler's module"));
      if (m.error) tooltip.appendChild(el("div", { class: "err" }, "import failed: " + m.error));
      tooltip.appendChild(el("table", null, rows.map(function (r) { return el("tr", null, el("td", null, r[0]), el("td", null, r[1])); })));
      tooltip.hidden = false;
      const pad = 14;
      const bw = tooltip.offsetWidth;
      const bh = tooltip.offsetHeight;
      const left = event.clientX + pad + bw > window.innerWidth ? event.clientX - pad - bw : event.clientX + pad;
      const topY = event.clientY + pad + bh > window.innerHeight ? event.clientY - pad - bh : event.clientY + pad;
      tooltip.style.left = Math.max(0, left) + "px";
      tooltip.style.top = Math.max(0, topY) + "px";
    });
    chart.addEventListener("mouseleave", function () { tooltip.hidden = true; });

    // The slowest modules by their own time, the usual culprits.
    const bySelf = modules.map(function (m, i) { return i; })
      .sort(function (a, b) { return (num(modules[b].self_us) || 0) - (num(modules[a].self_us) || 0); })
      .slice(0, 12);
    const table = el("table", { class: "data", id: "slowest-modules" },
      el("thead", null, el("tr", null,
        el("th", null, "slowest by self time"), el("th", null, "origin"), el("th", { class: "num" }, "self"),
        el("th", { class: "num" }, "cumulative"), el("th", null, "imported by"))),
      el("tbody", null, bySelf.map(function (i) {
        const m = modules[i];
        return el("tr", null,
          el("td", { class: "mono" }, m.module || "?", m.error ? el("span", { class: "sev critical", style: "margin-left:6px" }, m.error) : null),
          el("td", null, el("span", { class: "origin-tag" }, el("i", { class: "swatch o-" + (m.origin || "stdlib") }), m.origin || "–")),
          el("td", { class: "num" }, fmtUs(num(m.self_us))),
          el("td", { class: "num" }, fmtUs(num(m.cumulative_us))),
          el("td", { class: "mono" }, tree.parent[i] === null ? "—" : modules[tree.parent[i]].module));
      })));
    body.appendChild(el("div", { class: "two-col" }, table));
  }

  // ---- per-invocation plots ----------------------------------------------------

  // Points across all environments, one per invocation, in order.
  function invocationPoints(report, value) {
    const points = [];
    const bounds = [];
    list(report.environments).forEach(function (env, n) {
      bounds.push(points.length);
      list(env.invocations).forEach(function (inv, i) {
        points.push({ x: points.length, y: num(value(inv)), env: n, i: i, inv: inv });
      });
    });
    return { points: points, bounds: bounds };
  }

  function plot(data, options) {
    const W = 1200;
    const H = 250;
    const M = { l: 70, r: 16, t: 22, b: 34 };
    const pts = data.points;
    const ys = pts.map(function (p) { return p.y; }).filter(function (y) { return y !== null && (!options.log || y > 0); });
    const chart = svg("svg", { class: "plot", id: options.id, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": options.title });
    if (ys.length === 0) {
      chart.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis-title" }, "no data"));
      return chart;
    }
    let lo = Math.min.apply(null, ys);
    let hi = Math.max.apply(null, ys);
    let yOf;
    let tickValues;
    if (options.log) {
      lo = Math.pow(10, Math.floor(Math.log10(lo)));
      hi = Math.pow(10, Math.ceil(Math.log10(hi)));
      if (hi <= lo) hi = lo * 10;
      yOf = function (v) { return M.t + (H - M.t - M.b) * (1 - (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))); };
      tickValues = [];
      for (let t = lo; t <= hi * 1.0001; t *= 10) tickValues.push(t);
    } else {
      if (options.zeroBased) lo = 0;
      const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.05 || 1;
      if (!options.zeroBased) lo -= pad;
      hi += pad;
      tickValues = ticks(lo, hi);
      lo = Math.min(lo, tickValues[0]);
      hi = Math.max(hi, tickValues[tickValues.length - 1]);
      yOf = function (v) { return M.t + (H - M.t - M.b) * (1 - (v - lo) / (hi - lo)); };
    }
    const n = Math.max(pts.length, 1);
    const step = (W - M.l - M.r) / n;
    const xOf = function (x) { return M.l + step * (x + 0.5); };

    const grid = svg("g", { class: "grid" });
    const axis = svg("g", { class: "axis" });
    tickValues.forEach(function (t) {
      const y = yOf(t);
      grid.appendChild(svg("line", { x1: M.l, x2: W - M.r, y1: y, y2: y }));
      axis.appendChild(svg("text", { x: M.l - 8, y: y, dy: "0.32em", "text-anchor": "end" }, (options.tickFormat || options.format)(t)));
    });
    // Invocation numbers along the bottom, thinned to about twenty labels.
    const every = Math.max(1, Math.ceil(n / 20));
    pts.forEach(function (p) {
      if (p.i % every === 0) {
        axis.appendChild(svg("text", { x: xOf(p.x), y: H - M.b + 16, "text-anchor": "middle" }, String(p.i + 1)));
      }
    });
    axis.appendChild(svg("text", { class: "axis-title", x: W - M.r, y: H - 4, "text-anchor": "end" }, "invocation"));
    chart.appendChild(grid);
    chart.appendChild(axis);

    data.bounds.forEach(function (start, envIndex) {
      const x = M.l + step * start;
      if (data.bounds.length > 1 && start > 0) {
        chart.appendChild(svg("line", { class: "env-sep", x1: x, x2: x, y1: M.t - 14, y2: H - M.b }));
      }
      if (data.bounds.length > 1) {
        chart.appendChild(svg("text", { class: "env-label", x: x + 6, y: M.t - 8 }, "env #" + (envIndex + 1)));
      }
      const end = envIndex + 1 < data.bounds.length ? data.bounds[envIndex + 1] : pts.length;
      const seg = pts.slice(start, end).filter(function (p) { return p.y !== null && (!options.log || p.y > 0); });
      if (seg.length > 1) {
        chart.appendChild(svg("polyline", {
          class: "series",
          points: seg.map(function (p) { return xOf(p.x).toFixed(1) + "," + yOf(p.y).toFixed(1); }).join(" "),
        }));
      }
      if (options.trend && seg.length > 1) {
        const values = pts.slice(start, end).map(function (p) { return p.y; });
        const k = slope(values);
        const known = seg.map(function (p) { return [p.x - start, p.y]; });
        const mx = sum(known.map(function (q) { return q[0]; })) / known.length;
        const my = sum(known.map(function (q) { return q[1]; })) / known.length;
        const y0 = my - k * mx;
        const a = start;
        const b = end - 1;
        chart.appendChild(svg("line", {
          class: "trend", x1: xOf(a), x2: xOf(b), y1: yOf(y0), y2: yOf(y0 + k * (b - a)),
        }, svg("title", null, "trend " + (k >= 0 ? "+" : "") + options.format(k) + " per invocation")));
      }
    });
    pts.forEach(function (p) {
      if (p.y === null || (options.log && p.y <= 0)) return;
      const inv = p.inv;
      const failed = inv.status && inv.status !== "success";
      const classes = ["pt"];
      if (inv.cold_start) classes.push("cold");
      if (failed) classes.push("err");
      const label = "environment #" + (p.env + 1) + ", invocation " + (p.i + 1) + ": " + options.format(p.y) +
        (inv.cold_start ? " (cold)" : " (warm)") + (failed ? " · " + inv.status + (inv.error_type ? " " + inv.error_type : "") : "") +
        (inv.partial ? " · partial record" : "");
      chart.appendChild(svg("circle", { class: classes.join(" "), cx: xOf(p.x), cy: yOf(p.y), r: inv.cold_start ? 6 : 4.2 },
        svg("title", null, label)));
    });
    return chart;
  }

  function pointLegend(extra) {
    return el("div", { class: "legend" },
      el("span", null, el("i", { class: "swatch round bg-cold" }), "cold"),
      el("span", null, el("i", { class: "swatch round bg-warm" }), "warm"),
      el("span", null, el("i", { class: "swatch round ring-error" }), "not successful"),
      extra || null);
  }

  function latency(report) {
    const data = invocationPoints(report, function (inv) { return inv.duration_ms; });
    let log = false;
    const toggle = el("button", { type: "button", id: "latency-scale" }, "log scale");
    const section = panel("Latency per invocation", "handler duration, milliseconds", toggle);
    const holder = el("div");
    function draw() {
      holder.textContent = "";
      holder.appendChild(plot(data, {
        id: "latency-plot", title: "latency per invocation", format: fmtMs, tickFormat: fmtTickMs, zeroBased: true, log: log,
      }));
      toggle.textContent = log ? "linear scale" : "log scale";
    }
    toggle.addEventListener("click", function () { log = !log; draw(); });
    draw();
    section.appendChild(pointLegend());
    section.appendChild(holder);

    const s = report.summary || {};
    const rows = [
      ["init", s.init_ms],
      ["cold invocation", s.cold_invocation_ms],
      ["warm invocation", s.warm_invocation_ms],
    ];
    section.appendChild(el("table", { class: "data", id: "latency-table", style: "margin-top:12px" },
      el("thead", null, el("tr", null, el("th", null, "milliseconds"),
        ["count", "p50", "p95", "p99", "max", "mean"].map(function (h) { return el("th", { class: "num" }, h); }))),
      el("tbody", null, rows.map(function (r) {
        const d = r[1] || {};
        return el("tr", null, el("td", null, r[0]), el("td", { class: "num" }, String(d.count || 0)),
          ["p50", "p95", "p99", "max", "mean"].map(function (k) {
            return el("td", { class: "num" }, d.count ? fmtNum(d[k]) : "–");
          }));
      }))));
    return section;
  }

  function memory(report) {
    // Plotted in MiB so the axis ticks are round numbers of MiB.
    const data = invocationPoints(report, function (inv) {
      const bytes = rssAtEnd(inv);
      return bytes === null ? null : bytes / MIB;
    });
    const section = panel("Memory per invocation", "RSS of the runtime process at the end of each invocation");
    section.appendChild(pointLegend(el("span", null, el("i", { class: "swatch", style: "background:var(--accent);height:2px" }), "trend")));
    section.appendChild(plot(data, {
      id: "rss-plot",
      title: "RSS per invocation",
      format: function (mib) { return fmtBytes(mib * MIB); },
      tickFormat: function (mib) { return Number(mib.toPrecision(6)).toString() + " MiB"; },
      zeroBased: false,
      trend: true,
    }));
    const rows = list(report.environments).map(function (env, n) {
      const values = list(env.invocations).map(rssAtEnd);
      const known = values.filter(function (v) { return v !== null; });
      if (known.length === 0) return null;
      const k = slope(values);
      const lambdaMax = list(env.invocations).map(function (inv) { return num(inv.max_memory_used_mb); })
        .filter(function (v) { return v !== null; });
      return el("tr", null,
        el("td", null, "#" + (n + 1)),
        el("td", { class: "num" }, fmtBytes(known[0])),
        el("td", { class: "num" }, fmtBytes(known[known.length - 1])),
        el("td", { class: "num" }, fmtBytes(Math.max.apply(null, known))),
        el("td", { class: "num" }, (k > 0 ? "+" : "") + fmtBytes(k)),
        el("td", { class: "num" }, lambdaMax.length ? fmtNum(Math.max.apply(null, lambdaMax)) + " MB" : "–"));
    }).filter(Boolean);
    if (rows.length) {
      section.appendChild(el("table", { class: "data", style: "margin-top:12px" },
        el("thead", null, el("tr", null, el("th", null, "environment"),
          ["first", "last", "max", "growth / invocation", "Lambda max used"].map(function (h) { return el("th", { class: "num" }, h); }))),
        el("tbody", null, rows)));
    }
    return section;
  }

  function findings(report) {
    const items = list(report.findings).slice().sort(function (a, b) {
      return (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3) ||
        String(a.plugin).localeCompare(String(b.plugin)) || String(a.rule).localeCompare(String(b.rule));
    });
    const section = panel("Findings", plural(items.length, "finding") + " from the analysis plugins");
    if (items.length === 0) {
      section.appendChild(el("p", { class: "empty" }, "No findings."));
    } else {
      section.appendChild(el("table", { class: "data", id: "findings" },
        el("thead", null, el("tr", null, ["severity", "plugin", "rule", "message", "labels"].map(function (h) { return el("th", null, h); }))),
        el("tbody", null, items.map(function (f) {
          const labels = list(f.labels).map(function (pair) { return list(pair).join("="); }).join(" ");
          return el("tr", null,
            el("td", null, el("span", { class: "sev " + f.severity }, String(f.severity || "").toUpperCase())),
            el("td", { class: "nowrap" }, f.plugin || ""), el("td", { class: "mono" }, f.rule || ""),
            el("td", null, f.message || ""), el("td", { class: "labels" }, labels));
        }))));
    }
    const failures = list(report.plugin_failures);
    if (failures.length) {
      section.appendChild(el("h2", { style: "margin-top:16px;font-size:14px" }, "Plugin failures (" + failures.length + ")"));
      section.appendChild(el("ul", { class: "failures" }, failures.map(function (f) { return el("li", null, "✗ " + f); })));
    }
    return section;
  }

  function render(report) {
    if (!report || typeof report !== "object") throw new Error("the page holds no report data");
    const fn = report.function || {};
    document.title = (fn.name || "function") + " · pyrometer report";
    const app = document.getElementById("app");
    app.appendChild(header(report));
    app.appendChild(cards(report));
    app.appendChild(coldStart(report));
    app.appendChild(imports(report));
    app.appendChild(latency(report));
    app.appendChild(memory(report));
    app.appendChild(findings(report));
    app.appendChild(el("footer", null,
      "schema " + (report.schema || "?") + " · generated by pyrometer · a self-contained page: no network requests"));
  }

  try {
    render(JSON.parse(document.getElementById("report-data").textContent));
    if (document.body.getAttribute("data-render") !== "error") document.body.setAttribute("data-render", "ok");
  } catch (e) {
    reportError(e && e.stack ? e.stack : String(e));
  }
})();

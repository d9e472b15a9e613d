// The banditkit serve dashboard: polls the JSON API and draws plain DOM + inline SVG.
// No framework and no build step, so the file ships in the wheel as it is.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const TIMELINE_SECONDS = 600;
  const MIN_TIMELINE_SECONDS = 120;
  const TIMELINE_BUCKET = 10;
  const SVG_NS = "http://www.w3.org/2000/svg";

  // Every URL is resolved against the page's folder, so the dashboard keeps working when the
  // app is mounted under a prefix (/bandits/ serves /bandits/v1/...).
  const BASE = new URL(".", document.baseURI);

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function getJSON(path) {
    const response = await fetch(new URL(path, BASE), {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error ? body.error.message : response.statusText;
      throw new HttpError(response.status, message || `HTTP ${response.status}`);
    }
    return body;
  }

  // ---- small DOM helpers (textContent/setAttribute only: names come from users) ----

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  function percent(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  function ms(value) {
    if (value === null || value === undefined || !Number.isFinite(value)) return "–";
    if (value >= 100) return value.toFixed(0);
    if (value >= 10) return value.toFixed(1);
    return value.toFixed(2);
  }

  function clock(epochSeconds) {
    return new Date(epochSeconds * 1000).toLocaleTimeString("en-GB", { hour12: false });
  }

  function duration(seconds) {
    if (seconds < 60) return `${Math.round(seconds)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} d`;
  }

  // ---- status line ----

  function setStatus(state, message) {
    const status = document.getElementById("status");
    status.dataset.state = state;
    status.textContent = message;
    const stale = state === "unreachable" || state === "error";
    document.querySelector("main").classList.toggle("stale", stale);
  }

  // ---- arms table ----

  function armsTable(experiment, shares) {
    const contextual = shares !== null;
    const head = el(
      "tr",
      {},
      el("th", { scope: "col", text: "Arm" }),
      el("th", { scope: "col", class: "num", text: "Rewards", title: "rewards applied to this arm" }),
      el("th", { scope: "col", class: "num", text: "Reward sum" }),
      el("th", { scope: "col", class: "num", text: "Reward rate", title: "reward sum / rewards" }),
      el("th", {
        scope: "col",
        class: "num",
        text: contextual ? shares.column : "Win probability",
      }),
    );
    const rows = experiment.arms.map((arm) => {
      const rate = arm.count > 0 ? arm.reward_sum / arm.count : null;
      const shown = contextual ? shares.values.get(arm.arm) : arm.win_probability;
      return el(
        "tr",
        {
          "data-arm": arm.arm,
          "data-count": arm.count,
          "data-reward-sum": arm.reward_sum,
        },
        el("th", { scope: "row", text: arm.arm }),
        el("td", { class: "num", "data-field": "count", text: integer.format(arm.count) }),
        el("td", { class: "num", "data-field": "reward_sum", text: formatSum(arm.reward_sum) }),
        el("td", {
          class: "num",
          "data-field": "reward_rate",
          text: rate === null ? "–" : rate.toFixed(3),
        }),
        el("td", {
          class: "num",
          "data-field": contextual ? "share" : "win_probability",
          text: shown === null || shown === undefined ? "–" : percent(shown),
        }),
      );
    });
    return el(
      "table",
      { class: "arms", "data-role": "arms" },
      el("caption", { class: "visually-hidden", text: `Arms of ${experiment.name}` }),
      el("thead", {}, head),
      el("tbody", {}, ...rows),
    );
  }

  function formatSum(x) {
    return Number.isInteger(x) ? integer.format(x) : x.toFixed(2);
  }

  // Contextual policies have no single win probability (it depends on the context), so the
  // chart shows how the traffic is shared instead: per-arm decisions when the API reports
  // them, else the rewarded decisions (`count`), and the chart's title says which.
  function decisionShares(experiment) {
    if (experiment.arms.some((a) => a.win_probability !== null && a.win_probability !== undefined)) {
      return null;
    }
    const perArmDecisions = experiment.arms.every((a) => Number.isFinite(a.decisions));
    const counts = experiment.arms.map((a) => (perArmDecisions ? a.decisions : a.count));
    const total = counts.reduce((s, c) => s + c, 0);
    const values = new Map(experiment.arms.map((a, i) => [a.arm, total > 0 ? counts[i] / total : 0]));
    return {
      values,
      column: perArmDecisions ? "Share of decisions" : "Share of rewards",
      title: perArmDecisions ? "Share of decisions per arm" : "Share of rewarded decisions per arm",
      total,
    };
  }

  // ---- bar chart: one horizontal bar per arm ----

  function barChart(experiment, shares) {
    const contextual = shares !== null;
    const values = experiment.arms.map((a) => ({
      arm: String(a.arm),
      value: contextual ? shares.values.get(a.arm) : a.win_probability,
    }));
    const width = 480;
    const labelWidth = 110;
    const valueWidth = 56;
    const row = 26;
    const top = 6;
    const height = top + row * values.length + 4;
    const plot = width - labelWidth - valueWidth;
    const title = contextual
      ? `${shares.title} (${experiment.policy} is contextual: its win probability depends on the context)`
      : "Win probability per arm (exact)";
    const chart = svg("svg", {
      class: "chart bars",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `${experiment.name}: ${title}`,
      "data-chart": contextual ? "decision-share" : "win-probability",
    });
    chart.append(svg("title", { text: title }));
    // Light grid at 25% steps so bar lengths read as probabilities.
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      const x = labelWidth + tick * plot;
      chart.append(svg("line", { class: "grid", x1: x, x2: x, y1: top - 4, y2: height - 2 }));
    }
    values.forEach(({ arm, value }, i) => {
      const y = top + i * row;
      const v = value === null || value === undefined ? 0 : value;
      chart.append(
        svg("text", {
          class: "label",
          x: labelWidth - 8,
          y: y + row / 2,
          "text-anchor": "end",
          text: truncate(arm, 16),
        }),
        svg("rect", { class: "track", x: labelWidth, y: y + 4, width: plot, height: row - 8, rx: 3 }),
        svg(
          "rect",
          {
            class: "bar",
            x: labelWidth,
            y: y + 4,
            width: Math.max(0, v * plot),
            height: row - 8,
            rx: 3,
            "data-arm": arm,
            "data-value": v,
          },
          svg("title", { text: `${arm}: ${percent(v)}` }),
        ),
        svg("text", {
          class: "value",
          x: width - 4,
          y: y + row / 2,
          "text-anchor": "end",
          "data-arm": arm,
          text: percent(v),
        }),
      );
    });
    const caption = el("p", { class: "chart-title", text: contextual ? shares.title : "Win probability" });
    const note = contextual
      ? el("p", {
          class: "note",
          "data-role": "share-note",
          text:
            `${experiment.policy} is contextual: its win probability depends on the context, ` +
            `so this shows the ${shares.column.toLowerCase()} per arm instead.`,
        })
      : null;
    return el("figure", { class: "chart-box" }, caption, chart, note);
  }

  function truncate(text, n) {
    return text.length > n ? `${text.slice(0, n - 1)}…` : text;
  }

  // ---- timeline: decisions (bars) and rewards (line) per bucket ----

  function timelineChart(experiment, timeline) {
    const box = el("figure", { class: "chart-box" });
    box.append(el("p", { class: "chart-title", text: "Decisions over time" }));
    if (!timeline) {
      box.append(el("p", { class: "note", text: "Timeline unavailable." }));
      return box;
    }
    const bucket = timeline.bucket_seconds || TIMELINE_BUCKET;
    const byStart = new Map(timeline.buckets.map((b) => [b.t, b]));
    // The server may omit empty buckets: lay out the whole window so that gaps show as gaps,
    // on the server's bucket grid (its latest bucket) moved forward to the present.
    const now = Date.now() / 1000;
    let end = Math.floor(now / bucket) * bucket;
    if (timeline.buckets.length > 0) {
      end = Math.max(...timeline.buckets.map((b) => b.t));
      while (end + bucket <= now) end += bucket;
    }
    // A young experiment would be a sliver at the right of a 10-minute axis: show from its
    // first event (at least 2 minutes), up to the full window the API was asked for.
    const active = timeline.buckets.filter((b) => b.decisions > 0 || b.rewards > 0);
    const first = active.length > 0 ? Math.min(...active.map((b) => b.t)) : end;
    const span = Math.min(TIMELINE_SECONDS, Math.max(MIN_TIMELINE_SECONDS, end - first + 2 * bucket));
    const n = Math.max(1, Math.round(span / bucket));
    const starts = Array.from({ length: n }, (_, i) => end - (n - 1 - i) * bucket);
    const series = starts.map((t) => byStart.get(t) || { t, decisions: 0, rewards: 0, reward_sum: 0 });

    const width = 1000;
    const height = 190;
    const left = 44;
    const right = 8;
    const top = 10;
    const bottom = 24;
    const plotW = width - left - right;
    const plotH = height - top - bottom;
    const peak = Math.max(1, ...series.map((b) => Math.max(b.decisions, b.rewards)));
    const yMax = niceCeil(peak);
    const y = (v) => top + plotH - (v / yMax) * plotH;
    const slot = plotW / series.length;
    const totalDecisions = series.reduce((s, b) => s + b.decisions, 0);
    const totalRewards = series.reduce((s, b) => s + b.rewards, 0);
    const label = `${experiment.name}: ${integer.format(totalDecisions)} decisions and ${integer.format(
      totalRewards,
    )} rewards in the last ${duration(n * bucket)}, per ${bucket} s`;

    const chart = svg("svg", {
      class: "chart timeline",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": label,
      "data-chart": "timeline",
      "data-bucket-seconds": bucket,
    });
    chart.append(svg("title", { text: label }));
    for (const v of [0, yMax / 2, yMax]) {
      chart.append(
        svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
        svg("text", { class: "axis", x: left - 6, y: y(v), "text-anchor": "end", text: shortNumber(v) }),
      );
    }
    series.forEach((b, i) => {
      const h = plotH * (b.decisions / yMax);
      chart.append(
        svg(
          "rect",
          {
            class: "bar",
            x: left + i * slot + slot * 0.1,
            y: top + plotH - h,
            width: slot * 0.8,
            height: h,
            "data-t": b.t,
            "data-value": b.decisions,
          },
          svg("title", { text: `${clock(b.t)}: ${b.decisions} decisions, ${b.rewards} rewards` }),
        ),
      );
    });
    const points = series.map((b, i) => `${left + (i + 0.5) * slot},${y(b.rewards)}`).join(" ");
    chart.append(svg("polyline", { class: "line", points, "data-series": "rewards" }));
    const ticks = [0, Math.floor((series.length - 1) / 2), series.length - 1];
    ticks.forEach((i, k) => {
      const anchor = k === 0 ? "start" : k === ticks.length - 1 ? "end" : "middle";
      const x = k === 0 ? left : k === ticks.length - 1 ? width - right : left + (i + 0.5) * slot;
      chart.append(
        svg("text", { class: "axis", x, y: height - 6, "text-anchor": anchor, text: clock(series[i].t) }),
      );
    });
    if (totalDecisions === 0 && totalRewards === 0) {
      chart.append(
        svg("text", {
          class: "empty",
          x: left + plotW / 2,
          y: top + plotH / 2,
          "text-anchor": "middle",
          text: `No events in the last ${duration(TIMELINE_SECONDS)}`,
        }),
      );
    }
    box.append(
      chart,
      el(
        "p",
        { class: "legend" },
        el("span", { class: "key key-bar" }),
        "decisions ",
        el("span", { class: "key key-line" }),
        `rewards, per ${bucket} s`,
      ),
    );
    return box;
  }

  function niceCeil(v) {
    const power = 10 ** Math.floor(Math.log10(v));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * power >= v) return step * power;
    }
    return 10 * power;
  }

  function shortNumber(v) {
    if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
    if (v >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
    if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
    return `${+v.toFixed(1)}`;
  }

  // ---- one experiment card ----

  function experimentCard(experiment, timeline) {
    const shares = decisionShares(experiment);
    const params = Object.entries(experiment.params || {})
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ");
    const facts = el(
      "dl",
      { class: "facts" },
      el("dt", { text: "version" }),
      el("dd", { "data-field": "version", text: integer.format(experiment.version) }),
      el("dt", { text: "decisions" }),
      el("dd", { "data-field": "decisions", text: fmtOptional(experiment.decisions) }),
      el("dt", { text: "rewards" }),
      el("dd", { "data-field": "rewards", text: fmtOptional(experiment.rewards) }),
    );
    const headingId = `exp-${cssId(experiment.name)}`;
    return el(
      "article",
      {
        class: "card experiment",
        "data-experiment": experiment.name,
        "data-policy": experiment.policy,
        "data-version": experiment.version,
        "aria-labelledby": headingId,
      },
      el(
        "div",
        { class: "experiment-head" },
        el("h2", { id: headingId, text: experiment.name }),
        el("span", { class: "badge", "data-field": "policy", text: experiment.policy }),
        params ? el("span", { class: "muted params", text: params }) : null,
      ),
      facts,
      el(
        "div",
        { class: "experiment-body" },
        el("div", { class: "table-box arms-box" }, armsTable(experiment, shares)),
        el("div", { class: "bars-box" }, barChart(experiment, shares)),
        el("div", { class: "timeline-box" }, timelineChart(experiment, timeline)),
      ),
    );
  }

  function fmtOptional(v) {
    return Number.isFinite(v) ? integer.format(v) : "–";
  }

  function cssId(name) {
    return String(name).replace(/[^A-Za-z0-9_-]/g, "_");
  }

  function renderExperiments(experiments) {
    const root = document.getElementById("experiments");
    root.dataset.count = String(experiments.length);
    if (experiments.length === 0) {
      const create = new URL("v1/experiments", BASE).href;
      root.replaceChildren(
        el(
          "div",
          { class: "card empty", "data-role": "no-experiments" },
          el("h2", { text: "No experiments yet" }),
          el("p", { text: "Create one and it appears here within 2 seconds, for example:" }),
          el(
            "pre",
            {},
            el("code", {
              text: [
                `curl -X POST ${create} \\`,
                "  -H 'Content-Type: application/json' \\",
                `  -d '{"name": "homepage", "policy": "tspar", "arms": ["a", "b", "c"]}'`,
              ].join("\n"),
            }),
          ),
        ),
      );
      return;
    }
    root.replaceChildren(
      ...experiments.map(({ experiment, timeline }) => experimentCard(experiment, timeline)),
    );
  }

  // ---- latency ----

  // Which threshold applies: the seed's budgets are per recommendation and per update, so
  // they mark the recommend/rewards endpoints and the model operations behind them.
  function thresholdFor(key, thresholds) {
    if (key.endsWith("/recommend") || key === "model.decide") return thresholds.recommend;
    if (key.endsWith("/rewards") || key === "model.apply") return thresholds.update;
    return null;
  }

  function latencyOrder(key) {
    if (/^[A-Z]+ /.test(key)) return 0;
    if (key.startsWith("model.")) return 1;
    return 2;
  }

  function bullet(stat, threshold) {
    const width = 220;
    const height = 22;
    const scale = Math.max(stat.p99_ms || 0, threshold || 0, 1e-3) * 1.15;
    const x = (v) => (Math.max(0, v) / scale) * width;
    const label =
      `p50 ${ms(stat.p50_ms)} ms, p95 ${ms(stat.p95_ms)} ms, p99 ${ms(stat.p99_ms)} ms` +
      (threshold ? `, threshold ${threshold} ms` : "");
    const chart = svg("svg", {
      class: "chart bullet",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": label,
      "data-chart": "latency",
    });
    chart.append(svg("title", { text: label }));
    for (const [name, cls] of [["p99_ms", "p99"], ["p95_ms", "p95"], ["p50_ms", "p50"]]) {
      chart.append(
        svg("rect", {
          class: `pct ${cls}`,
          x: 0,
          y: 5,
          width: x(stat[name] || 0),
          height: 12,
          "data-percentile": cls,
          "data-value": stat[name],
        }),
      );
    }
    if (threshold) {
      const at = x(threshold);
      chart.append(
        svg("line", { class: "threshold", x1: at, x2: at, y1: 1, y2: 21, "data-threshold": threshold }),
      );
    }
    return chart;
  }

  function renderLatency(stats) {
    const body = document.getElementById("latency-body");
    if (!stats) {
      body.replaceChildren(el("p", { class: "note", text: "Latency statistics unavailable." }));
      return;
    }
    const thresholds = stats.thresholds_ms || { recommend: 50, update: 20 };
    document.getElementById("threshold-recommend").textContent = thresholds.recommend;
    document.getElementById("threshold-update").textContent = thresholds.update;
    const entries = Object.entries(stats.latency || {})
      .filter(([, s]) => s && s.count > 0)
      .sort(([a], [b]) => latencyOrder(a) - latencyOrder(b) || a.localeCompare(b));
    if (entries.length === 0) {
      body.replaceChildren(
        el("p", { class: "note", "data-role": "no-latency", text: "No requests measured yet." }),
      );
      return;
    }
    const rows = entries.map(([key, stat]) => {
      const threshold = thresholdFor(key, thresholds);
      const over = threshold !== null && stat.p99_ms > threshold;
      return el(
        "tr",
        { "data-endpoint": key, "data-threshold": threshold, class: over ? "over" : null },
        el("th", { scope: "row" }, el("code", { text: key })),
        el("td", { class: "num", text: integer.format(stat.count) }),
        el("td", { class: "num", "data-field": "p50_ms", text: ms(stat.p50_ms) }),
        el("td", { class: "num", "data-field": "p95_ms", text: ms(stat.p95_ms) }),
        el("td", { class: "num", "data-field": "p99_ms", text: ms(stat.p99_ms) }),
        el("td", { class: "num", text: ms(stat.max_ms) }),
        el("td", { class: "num", text: threshold === null ? "–" : `${threshold}` }),
        el(
          "td",
          { class: "bullet-cell" },
          bullet(stat, threshold),
          over ? el("span", { class: "flag", text: "p99 over" }) : null,
        ),
      );
    });
    const head = el(
      "tr",
      {},
      el("th", { scope: "col", text: "Endpoint / operation" }),
      el("th", { scope: "col", class: "num", text: "Count" }),
      el("th", { scope: "col", class: "num", text: "p50 ms" }),
      el("th", { scope: "col", class: "num", text: "p95 ms" }),
      el("th", { scope: "col", class: "num", text: "p99 ms" }),
      el("th", { scope: "col", class: "num", text: "max ms" }),
      el("th", { scope: "col", class: "num", text: "limit ms" }),
      el("th", { scope: "col", text: "p50 · p95 · p99 vs limit" }),
    );
    const slow = Number.isFinite(stats.slow_operations)
      ? el("p", {
          class: "muted",
          "data-field": "slow_operations",
          text: `Slow operations (over the threshold) so far: ${integer.format(stats.slow_operations)}`,
        })
      : null;
    body.replaceChildren(
      el(
        "div",
        { class: "table-box" },
        el(
          "table",
          { class: "latency", "data-role": "latency" },
          el("caption", { class: "visually-hidden", text: "Latency per endpoint and model operation" }),
          el("thead", {}, head),
          el("tbody", {}, ...rows),
        ),
      ),
      slow,
    );
  }

  function renderServerInfo(stats) {
    const info = document.getElementById("server-info");
    if (!stats) return;
    const parts = [];
    if (stats.banditkit_version) parts.push(`banditkit ${stats.banditkit_version}`);
    if (stats.backend) parts.push(`${stats.backend} backend`);
    if (Number.isFinite(stats.uptime_seconds)) parts.push(`up ${duration(stats.uptime_seconds)}`);
    info.textContent = parts.join(" · ");
  }

  // ---- refresh loop ----

  async function loadExperiment(name) {
    const path = `v1/experiments/${encodeURIComponent(name)}`;
    const [experiment, timeline] = await Promise.all([
      getJSON(path),
      getJSON(`${path}/timeline?seconds=${TIMELINE_SECONDS}&bucket=${TIMELINE_BUCKET}`).catch(() => null),
    ]);
    return { experiment, timeline };
  }

  async function refresh() {
    let list;
    let stats;
    try {
      [list, stats] = await Promise.all([getJSON("v1/experiments"), getJSON("v1/stats").catch(() => null)]);
    } catch (error) {
      if (error instanceof HttpError) {
        setStatus("error", `The server answered ${error.status}: ${error.message}. Retrying every 2 s.`);
      } else {
        setStatus("unreachable", `Cannot reach the server at ${BASE.href}. Retrying every 2 s.`);
      }
      return;
    }
    const names = list.experiments || [];
    const loaded = await Promise.all(
      names.map((name) =>
        loadExperiment(name).catch((error) => {
          // Deleted between the list and the read: drop it; anything else stays visible.
          if (error instanceof HttpError && error.status === 404) return null;
          throw error;
        }),
      ),
    ).catch((error) => {
      setStatus("error", `Could not read the experiments: ${error.message}. Retrying every 2 s.`);
      return undefined;
    });
    if (loaded === undefined) return;
    const experiments = loaded.filter((x) => x !== null);
    renderExperiments(experiments);
    renderLatency(stats);
    renderServerInfo(stats);
    const count = experiments.length;
    if (count === 0) setStatus("empty", "Connected · no experiments yet");
    else setStatus("ok", `Connected · ${count} experiment${count === 1 ? "" : "s"}`);
    document.getElementById("updated").textContent = `updated ${clock(Date.now() / 1000)}`;
  }

  // Chain timeouts instead of setInterval so that a slow server never gets overlapping polls.
  async function loop() {
    try {
      await refresh();
    } catch (error) {
      setStatus("error", `Dashboard error: ${error.message}`);
    }
    setTimeout(loop, REFRESH_MS);
  }

  loop();
})();

// binpick operator page. No library, no build step: DOM + fetch + EventSource + hand-written SVG.
// The live image follows the server-sent `frame` events (one /live.jpg per publication, encoded
// once on the server for all viewers); the rest of the page refreshes from /api/overview.json.
"use strict";

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`);
const CSRF = meta("csrf-token").content;
const USER = meta("user").content;
const CAN_ACT = meta("user").dataset.canAct === "true";
const SVG_NS = "http://www.w3.org/2000/svg";

// Frames shown, for tests and for the caption: {sequence, published, shown} (seconds).
window.binpickShown = [];

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.setAttribute("class", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const fmtTime = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
function fmtDuration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}
const fmtValue = (v) => (v === null || v === undefined || v === "" ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));

// ---------------------------------------------------------------- live image
let liveLoading = null;
let livePending = null;

function showFrame(event) {
  if (liveLoading) { livePending = event; return; }  // one fetch in flight; keep only the newest
  liveLoading = event;
  const img = new Image();
  img.onload = () => {
    const live = $("live");
    live.src = img.src;
    live.dataset.sequence = String(event.sequence);
    live.dataset.version = String(event.version);
    $("live-empty").hidden = true;
    window.binpickShown.push({ sequence: event.sequence, published: event.time, shown: Date.now() / 1000 });
    if (window.binpickShown.length > 200) window.binpickShown.shift();
    $("live-caption").textContent = `sequence ${event.sequence} · ${fmtTime(event.time)}` +
      (event.error && event.error !== "ok" ? ` · ${event.error}` : "");
    done();
  };
  img.onerror = done;
  img.src = `/live.jpg?v=${event.version}`;
  function done() {
    liveLoading = null;
    if (livePending) { const next = livePending; livePending = null; showFrame(next); }
  }
}

function connectEvents() {
  const source = new EventSource("/events");
  source.addEventListener("frame", (msg) => {
    const event = JSON.parse(msg.data);
    if (event.version > 0) showFrame(event);
    scheduleRefresh(300);
  });
  source.onerror = () => setState({ state: "idle", reason: "connection to the appliance lost; retrying…" }, true);
}

// ---------------------------------------------------------------- overview
let refreshTimer = null;
let lastRefresh = 0;
function scheduleRefresh(delay) {
  if (refreshTimer) return;
  const wait = Math.max(delay, 1000 - (Date.now() - lastRefresh));  // at most once a second
  refreshTimer = setTimeout(refresh, wait);
}

async function refresh() {
  refreshTimer = null;
  lastRefresh = Date.now();
  try {
    const response = await fetch("/api/overview.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    render(await response.json());
  } catch (err) {
    setState({ state: "error", reason: `status unavailable: ${err.message}` }, true);
  }
  scheduleRefresh(3000);
}

function setState(cell, transient = false) {
  const box = $("state");
  box.className = `state state-${cell.state}`;
  box.dataset.state = cell.state;
  $("state-word").textContent = cell.state;
  $("state-reason").textContent = cell.reason;
  $("state-reason").title = cell.reason;
  if (!transient) document.title = `binpick ${cell.state}`;
}

function render(o) {
  setState(o.cell);
  $("cell-name").textContent = o.name;
  $("kpi-mode").textContent = o.mode;
  $("kpi-cycles").textContent = o.cycles;
  const ms = (v) => (v === undefined ? "–" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);
  $("kpi-p50").textContent = ms(o.cycle_ms.p50);
  $("kpi-p95").textContent = ms(o.cycle_ms.p95);
  $("kpi-uptime").textContent = fmtDuration(o.uptime_s);
  const r = o.last_result || {};
  $("kpi-grasp").textContent = r.error === "ok" ? `${(+r.score).toFixed(2)} @ ${(+r.x).toFixed(0)},${(+r.y).toFixed(0)}` : (r.error || "–");
  if (o.live.version > 0 && $("live").dataset.version !== String(o.live.version) && !liveLoading) showFrame(o.live);
  renderPicks(o.picks);
  renderCharts(o.chart, o.bin_s, o.time);
  renderErrors(o.errors);
  renderPlc(o.plc);
  renderKv($("model"), o.model);
  renderKv($("calibration"), o.calibration);
  renderConfig(o.config);
  renderActions(o.actions);
}

function renderPicks(picks) {
  const list = $("picks");
  const items = picks.map((p) =>
    el("li", { class: p.outcome, title: `sequence ${p.sequence} · score ${p.score} · (${p.u}, ${p.v}) px · ${fmtTime(p.time)}` },
      el("img", { src: `/picks/${p.sequence}.jpg?t=${p.time}`, alt: `pick ${p.sequence}`, loading: "lazy" }),
      el("div", { class: "tag" }, el("span", { text: `#${p.sequence}` }), el("b", { text: p.outcome }))));
  list.replaceChildren(...items);
  if (!picks.length) list.replaceChildren(el("li", { class: "pending" }, el("div", { class: "tag", text: "no pick yet" })));
}

// ---------------------------------------------------------------- SVG charts
let W = 600;
const H = 200, PAD_L = 52, PAD_R = 10, PAD_T = 8, PAD_B = 22;

function axes(svg, yMax, yFmt, t0, t1) {
  W = Math.max(240, Math.round(svg.clientWidth || 600));  // draw in screen pixels: text keeps its shape
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  for (let i = 0; i <= 4; i++) {
    const y = PAD_T + (H - PAD_T - PAD_B) * (1 - i / 4);
    svg.append(el("svg:line", { class: "grid-line", x1: PAD_L, x2: W - PAD_R, y1: y, y2: y }));
    svg.append(el("svg:text", { class: "axis-label", x: PAD_L - 6, y: y + 4, "text-anchor": "end", text: yFmt((yMax * i) / 4) }));
  }
  for (let m = 0; m <= 60; m += 15) {
    const x = PAD_L + ((W - PAD_L - PAD_R) * m) / 60;
    const label = m === 60 ? "now" : `-${60 - m} min`;
    svg.append(el("svg:text", { class: "axis-label", x, y: H - 6, "text-anchor": m === 0 ? "start" : m === 60 ? "end" : "middle", text: label }));
  }
}

// A series as a path (gaps where a minute had no data) and a dot per point (a lone minute shows).
function series(svg, cls, points, t0, t1, yMax) {
  const sx = (t) => PAD_L + ((W - PAD_L - PAD_R) * (t - t0)) / (t1 - t0);
  const sy = (v) => PAD_T + (H - PAD_T - PAD_B) * (1 - Math.min(v, yMax) / yMax);
  let d = "", pen = false;
  const dots = [];
  for (const [t, v] of points) {
    if (v === null || v === undefined) { pen = false; continue; }
    const x = sx(t).toFixed(1), y = sy(v).toFixed(1);
    d += `${pen ? "L" : "M"}${x},${y}`;
    pen = true;
    dots.push(el("svg:circle", { class: `dot-${cls}`, cx: x, cy: y, r: 2.5 }));
  }
  svg.append(el("svg:path", { class: `series-${cls}`, d }), ...dots);
}
const fmtMs = (v, max) => (max >= 2000 ? `${(v / 1000).toFixed(max >= 20000 ? 0 : 1)} s` : `${Math.round(v)} ms`);

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 4, 6, 8, 10].map((k) => k * p).find((c) => c >= v * 1.1) || 10 * p;  // quarters read well
}

function renderCharts(chart, binS, now) {
  const t1 = now, t0 = now - 3600;
  const mid = (b) => b.t - binS / 2;
  const cycle = $("chart-cycle");
  const maxMs = niceMax(Math.max(0, ...chart.map((b) => b.max_ms || 0)));
  cycle.replaceChildren();
  axes(cycle, maxMs, (v) => fmtMs(v, maxMs), t0, t1);
  series(cycle, "b", chart.map((b) => [mid(b), b.max_ms]), t0, t1, maxMs);
  series(cycle, "a", chart.map((b) => [mid(b), b.p50_ms]), t0, t1, maxMs);
  const success = $("chart-success");
  success.replaceChildren();
  axes(success, 100, (v) => `${Math.round(v)}%`, t0, t1);
  const pct = (v) => (v === null ? null : v * 100);
  series(success, "a", chart.map((b) => [mid(b), pct(b.grasp_rate)]), t0, t1, 100);
  series(success, "b", chart.map((b) => [mid(b), pct(b.pick_rate)]), t0, t1, 100);
  for (const svg of [cycle, success]) {
    if (!chart.some((b) => b.cycles)) svg.append(el("svg:text", { class: "nodata", x: W / 2, y: H / 2, "text-anchor": "middle", text: "no cycle in the last hour" }));
  }
}

// ---------------------------------------------------------------- tables
function renderErrors(errors) {
  $("errors-count").textContent = errors.length ? `${errors.length} most recent` : "none";
  const rows = errors.map((e) => el("tr", {},
    el("td", { text: fmtTime(e.time) }), el("td", { text: e.sequence }), el("td", { class: "err", text: e.error }),
    el("td", { text: e.message }),
    el("td", {}, e.snapshot ? el("a", { href: `/snapshots/${encodeURIComponent(e.snapshot)}/`, text: "open", target: "_blank", rel: "noopener" }) : "–")));
  $("errors").tBodies[0].replaceChildren(...rows);
}

function renderPlc(plc) {
  $("handshake").textContent = plc.handshake;
  $("plc-allow").textContent = `allow-list ${plc.allow_list}`;
  renderKv($("plc-servers"), { ...plc.servers, rejected_writes: plc.rejected_writes, last_rejection: plc.last_rejection || "–" });
  const clients = plc.clients.map((c) => el("tr", {}, el("td", { text: c.peer }), el("td", { text: c.access }),
    el("td", { text: c.requests }), el("td", { text: fmtTime(c.since) })));
  if (!clients.length) clients.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no Modbus TCP client connected" })));
  $("plc-clients").tBodies[0].replaceChildren(...clients);
  $("plc-refused").textContent = `refused: ${plc.refused_connections} connections, ${plc.refused_requests} requests`;
  const regs = plc.registers;
  $("bits").replaceChildren(...Object.entries(regs.status_bits).map(([name, on]) => el("span", { class: on ? "bit on" : "bit", text: name })));
  $("registers").tBodies[0].replaceChildren(...Object.entries(regs).filter(([k]) => k !== "status_bits")
    .map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: fmtValue(v) }))));
}

function renderKv(dl, data) {
  dl.replaceChildren(...Object.entries(data || {}).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: fmtValue(v) })]));
}

function renderConfig(config) {
  $("config-source").textContent = config.source || "";
  const sections = Object.entries(config).filter(([, v]) => v && typeof v === "object").map(([name, values]) => {
    const dl = el("dl", { class: "kv" });
    renderKv(dl, values);
    return el("section", {}, el("h3", { text: name }), dl);
  });
  $("config").replaceChildren(...sections);
}

function renderActions(actions) {
  const rows = actions.map((a) => el("tr", {}, el("td", { text: fmtTime(a.time) }), el("td", { text: a.who }),
    el("td", { text: a.what }), el("td", { text: a.result })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "none since start" })));
  $("actions").tBodies[0].replaceChildren(...rows);
}

// ---------------------------------------------------------------- actions
function toast(text, bad = false) {
  const t = $("toast");
  t.textContent = text;
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  t.dataset.result = bad ? "refused" : "ok";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

async function takeSnapshot() {
  const button = $("snapshot-btn");
  button.disabled = true;
  try {
    const response = await fetch("/snapshot", { method: "POST", headers: { "X-CSRF-Token": CSRF } });
    const body = await response.text();
    if (response.ok) toast(`snapshot written: ${JSON.parse(body).name}`);
    else toast(`snapshot refused (${response.status}): ${body.trim()}`, true);
  } catch (err) {
    toast(`snapshot failed: ${err.message}`, true);
  } finally {
    button.disabled = !CAN_ACT;
    scheduleRefresh(0);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("user").textContent = USER;
  const button = $("snapshot-btn");
  button.disabled = !CAN_ACT;
  button.title = CAN_ACT ? "write a snapshot of the last cycle on the appliance" : "your account may view, not act";
  button.addEventListener("click", takeSnapshot);
  connectEvents();
  refresh();
});

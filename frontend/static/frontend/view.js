// vpp-maglev /view/: keeps the server-rendered page live over a websocket.
// Protocol (frontend/hub.py): a snapshot, then deltas {base, seq} and heartbeats, each with the
// server's epoch and clock. On a gap, a new epoch, a reconnect or a silence we resync.

import { wholeMessages } from "./parts.js";

const live = document.getElementById("live");
const params = new URLSearchParams(location.search);
// Fields that change on every probe: updated in place without a highlight.
const QUIET = new Set(["probe", "counter", "since", "history", "packets", "rates", "confirmed_at", "version"]);
let socket = null, opened = 0, epoch = null, seq = null, lastHeard = 0, clockSkew = 0, items = {};

// Above the server's row limit the page shows each pool's summary and its problem rows only
// (data-mode="summary"); ?frontend=NAME shows every row of one frontend (data-focus).
const summaryMode = document.body.dataset.mode === "summary";
const focus = document.body.dataset.focus;
const rowLimit = parseInt(document.body.dataset.limit || "1000", 10);

const whole = wholeMessages((m) => receive(m));

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // A summary page asks to be spared the probe texts of the rows it does not show.
  socket = new WebSocket(`${scheme}://${location.host}/ws/view/${summaryMode ? "?mode=summary" : ""}`);
  opened = Date.now();
  socket.onmessage = (e) => whole(JSON.parse(e.data));
  socket.onclose = () => { socket = null; setTimeout(connect, 1000); };
}

function resync() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resync" }));
}

function receive(m) {
  lastHeard = Date.now();
  clockSkew = m.now * 1000 - Date.now();
  document.body.classList.remove("stale");
  if (m.type === "snapshot") {
    const restarted = epoch !== null && epoch !== m.epoch;
    epoch = m.epoch; seq = m.seq;
    order = new Map(Object.keys(m.items).map((k, i) => [k, i]));
    document.body.dataset.epoch = epoch;                // which server run the page shows
    const next = { ...m.items };
    for (const key of Object.keys(items)) if (!(key in next)) next[key] = null;  // gone meanwhile
    apply(next, !restarted);
    if (restarted) refetch();
    live.textContent = "live";
    return;
  }
  if (m.epoch !== epoch) { resync(); return; }          // the server restarted
  if (m.type === "delta") {
    if (m.base !== seq) { resync(); return; }          // we missed something
    seq = m.seq;
    apply(m.items, true);
  }
}

// Every item's cells and row, found in one pass over the page (and again after a refetch):
// with 10,000 rows, a selector query per item made a burst of changes take seconds.
let index = null;
function cellsOf(key) {
  if (index === null) {
    index = new Map();
    for (const cell of document.querySelectorAll("[data-k]")) {
      const k = cell.dataset.k;
      if (!index.has(k)) index.set(k, { cells: [], row: null });
      index.get(k).cells.push(cell);
    }
    for (const row of document.querySelectorAll("tr[data-key]")) {
      if (!index.has(row.dataset.key)) index.set(row.dataset.key, { cells: [], row: null });
      index.get(row.dataset.key).row = row;
    }
  }
  return index.get(key) || { cells: [], row: null };
}

// Merge items into the page: only values that changed are touched (and flashed).
function apply(next, flash, fetchMissing = true) {
  let missing = false;
  // Rows a summary page may still take (counted once: a query per new row made a burst slow).
  let room = summaryMode ? rowLimit - document.querySelectorAll("tr[data-key]").length : 0;
  const adding = new Map();                             // table → new rows, written in one go
  for (const [key, change] of Object.entries(next)) {
    const { cells, row } = cellsOf(key);
    const before = items[key];
    if (change === null) {
      if (summaryMode) count(before, -1);
      delete items[key];
      if (row) missing = true;
      continue;
    }
    // A changed item comes as a patch of its changed fields (no "kind"): merge it.
    const patch = change.kind === undefined ? change : null;
    if (patch && !before) { resync(); return; }     // a patch of what we never had: resync
    const item = patch ? { ...before, ...patch } : change;
    items[key] = item;
    if (summaryMode && (!patch || "state" in patch)) { count(before, -1); count(item, 1); }
    if (!cells.length) {
      if (!wanted(item)) continue;
      if (!summaryMode) { missing = true; continue; }
      if (room <= 0) continue;                        // full: its pool's summary line counts it
      // A summary page writes a new problem row itself (no fetch of the page per burst).
      const table = params.get("sort") ? null : tableOf(item);
      if (!table) { missing = true; continue; }
      if (!adding.has(table)) adding.set(table, []);
      adding.get(table).push([key, item]);
      room -= 1;
      continue;
    }
    for (const cell of cells) {
      const field = cell.dataset.f;
      if (patch && !(field in patch) && !(field === "drift" && ("vpp_weight" in patch || "effective" in patch))) continue;  // unchanged (drift's text shows both)
      if (before && JSON.stringify(before[field]) === JSON.stringify(item[field])) continue;
      if (render(cell, field, item) && flash && before && !QUIET.has(field)) flashCell(cell);
    }
    if (row && item.state) row.className = `state-${item.state}`;
    if (row && summaryMode && !wanted(item)) { row.remove(); index?.delete(key); room += 1; }  // fine again
    if (item.kind === "deployment" && item.server) {
      const section = document.querySelector(`section[data-key="${CSS.escape(key)}"]`);
      if (section) section.classList.toggle("stale", !!item.stale);
      // A remote daemon's "last confirmed" text follows `stale`, which its timestamp does not.
      for (const cell of cells) if (cell.dataset.f === "confirmed_at") render(cell, "confirmed_at", item);
    }
  }
  for (const [table, rows] of adding) insertRows(table, rows);
  if (summaryMode) showCounts();
  if (missing && fetchMissing) refetch();
}

// A backend row as frontend/rows.py writes it (the same markup, character for character:
// tests/frontend/test_view_browser.py compares them), put in its pool's table in the order
// of the server's document. With a sort order in the URL the page is fetched instead.
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;" };
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]);
const txt = (v, none = "") => (v === null || v === undefined ? none : esc(v));
const PLAIN = [["weight", ""], ["override", "-"], ["effective", ""], ["vpp_weight", "-"], ["vpp_buckets", "-"], ["probe", ""], ["counter", ""]];
const NO_ROW_BUTTON = new Set(["weight", "sync", "reload"]);
let order = new Map();                                 // item key → its place in the snapshot

function rowHtml(key, b, actions) {
  const k = esc(key), state = txt(b.state);
  const history = (b.history || []).map((t) => `<li>${txt(t.from)} → ${txt(t.to)}: ${txt(t.reason)}</li>`).join("") || "<li>no transitions yet</li>";
  const drift = b.drift ? `drift: VPP has ${txt(b.vpp_weight, "no AS")}, should be ${txt(b.effective)}` : "";
  let out = `<tr data-key="${k}" class="state-${state}">\n`
    + `<td><details><summary data-k="${k}" data-f="name">${txt(b.name)}</summary>`
    + `<ol class="history" data-k="${k}" data-f="history">${history}</ol></details>`
    + `<div class="why" data-k="${k}" data-f="why_zero">${b.why_zero ? `weight 0: ${txt(b.why_zero)}` : ""}</div>`
    + `<div class="drift" data-k="${k}" data-f="drift">${drift}</div></td>\n`
    + `<td data-k="${k}" data-f="address">${txt(b.address)}</td>\n`
    + `<td><b class="badge state-${state}" data-k="${k}" data-f="state">${state}</b></td>\n`;
  for (const [field, none] of PLAIN) out += `<td data-k="${k}" data-f="${field}">${txt(b[field], none)}</td>\n`;
  out += `<td data-k="${k}" data-f="since" data-since="${txt(b.since)}">${esc(age(b.since))}</td>\n`;
  if (actions.length) {
    const attrs = `data-backend="${txt(b.name)}" data-frontend="${txt(b.frontend)}" data-pool="${txt(b.pool)}"`
      + (b.server ? ` data-server="${txt(b.server)}"` : "");
    let buttons = actions.filter((a) => !NO_ROW_BUTTON.has(a)).map((a) => `<button type="button" data-action="${esc(a)}">${esc(a)}</button>`).join("");
    if (actions.includes("weight")) buttons += '<button type="button" data-action="weight">weight…</button>';
    out += `<td class="actions" ${attrs}>${buttons}</td>\n`;
  }
  return out + "</tr>\n";
}

// The pool table a backend's row goes in (looked up once per pool until the page is refetched).
let tables = null;
function tableOf(item) {
  if (tables === null) tables = new Map([...document.querySelectorAll("table[data-pool]")].map((t) => [t.dataset.pool, t]));
  const table = tables.get(`${item.server || ""}|${item.frontend}|${item.pool}`);
  return table && table.tBodies.length ? table : null;
}

// New rows of one table, parsed in one go and merged into its rows in the document's order
// (a parse and a walk of the table per row made a burst of 1,000 new rows take half a second).
function insertRows(table, rows) {
  const actions = (table.closest("section.frontend")?.dataset.actions || "").split(",").filter(Boolean);
  const at = (key) => order.get(key) ?? Infinity;
  rows.sort((a, b) => { const x = at(a[0]), y = at(b[0]); return x < y ? -1 : x > y ? 1 : 0; });
  const template = document.createElement("template");
  template.innerHTML = rows.map(([key, item]) => rowHtml(key, item, actions)).join("");
  const body = table.tBodies[0];
  let next = body.rows[0] || null;
  for (const row of [...template.content.querySelectorAll("tr")]) {
    const place = at(row.dataset.key);
    while (next && at(next.dataset.key) <= place) next = next.nextElementSibling;
    body.insertBefore(row, next);
    if (index !== null) index.set(row.dataset.key, { cells: [...row.querySelectorAll("[data-k]")], row });
  }
}

// The summary lines of summary mode: per pool, its backends counted by state as the items
// change (written as the server writes them: frontend/views.py, summary_text).
let counts = new Map(), dirty = new Set(), lines = null;
function count(item, by) {
  if (!item || item.kind !== "backend") return;
  const group = `${item.server || ""}|${item.frontend}|${item.pool}`;
  let states = counts.get(group);
  if (!states) counts.set(group, (states = {}));
  states[item.state] = (states[item.state] || 0) + by;
  if (!states[item.state]) delete states[item.state];
  dirty.add(group);
}

function showCounts() {
  if (lines === null) {
    lines = new Map();
    for (const cell of document.querySelectorAll("[data-summary]")) {
      if (!lines.has(cell.dataset.summary)) lines.set(cell.dataset.summary, []);
      lines.get(cell.dataset.summary).push(cell);
      dirty.add(cell.dataset.summary);
    }
  }
  for (const group of dirty) {
    const states = counts.get(group) || {};
    const n = Object.values(states).reduce((a, b) => a + b, 0);
    const parts = Object.keys(states).sort().map((s) => `${states[s]} ${s}`).join(", ");
    const text = `${n} backend${n === 1 ? "" : "s"}` + (parts ? `: ${parts}` : "");
    for (const cell of lines.get(group) || []) if (cell.textContent !== text) cell.textContent = text;
  }
  dirty.clear();
}

function isProblem(item) {                             // frontend/document.py, is_problem
  return item.state !== "up" || (item.pool_active && !item.effective) || !!item.drift;
}

function render(cell, field, item) {
  const value = item[field];
  let text;
  if (field === "history") {
    cell.replaceChildren(...(value.length ? value : [null]).map((t) => {
      const li = document.createElement("li");
      li.textContent = t ? `${t.from} → ${t.to}: ${t.reason}` : "no transitions yet";
      return li;
    }));
    return true;
  }
  if (field === "since") { cell.dataset.since = value ?? ""; text = age(value); }
  else if (field === "why_zero") text = value ? `weight 0: ${value}` : "";
  else if (field === "drift") text = value ? `drift: VPP has ${item.vpp_weight ?? "no AS"}, should be ${item.effective}` : "";
  else if (field === "active_pool") text = value ?? "none";
  else if (field === "vpp_held") text = value ? "VPP writes held: warmup (VPP keeps what it had until the first verdicts are in)" : "";
  else if (field === "confirmed_at") { cell.dataset.confirmed = value ?? ""; text = confirmed(value, item.stale); }
  else if (field === "packets") text = value ? `VPP packets: first ${value.first_packet}, next ${value.next_packet}, untracked ${value.untracked_packet}, no server ${value.no_server}` : "";
  else if (field === "rates") text = value ? `per second: first ${value.first_packet}, next ${value.next_packet}, untracked ${value.untracked_packet}, no server ${value.no_server}` : "";
  else text = value === null || value === undefined ? "-" : String(value);
  if (field === "state" || field === "vpp") cell.className = `badge ${field === "vpp" ? "vpp" : "state"}-${value}`;
  if (cell.textContent === text) return false;
  cell.textContent = text;
  return true;
}

function flashCell(cell) {
  cell.classList.add("flash");
  setTimeout(() => cell.classList.remove("flash"), 1500);
}

function wanted(item) {
  if (focus && (item.kind === "backend" ? item.frontend : item.name) !== focus) return false;
  if (item.kind !== "backend") return true;
  if (summaryMode && !isProblem(item)) return false;
  if (params.get("problems") && item.state === "up" && !(item.pool_active && !item.effective)) return false;
  const q = (params.get("q") || "").toLowerCase();
  return !q || ["name", "address", "state", "frontend", "pool", "probe"].some((f) => String(item[f] ?? "").toLowerCase().includes(q));
}

// Rows came or went (a config change, a filter): take the server's rendering of this URL.
// One fetch at a time; rows that come or go meanwhile ask for one more afterwards.
let refetching = false, again = false;
async function refetch() {
  if (refetching) { again = true; return; }
  refetching = true;
  try {
    const page = new DOMParser().parseFromString(await (await fetch(location.href)).text(), "text/html");
    document.getElementById("frontends").replaceWith(page.getElementById("frontends"));
    index = tables = lines = null;                     // the rows are new
    apply(items, false, false);                        // what arrived while it was on its way
    tick();
  } catch { /* the next change or reconnect tries again */ }
  finally {
    refetching = false;
    if (again) { again = false; refetch(); }
  }
}

function confirmed(at, stale) {
  if (!stale) return "";
  return at ? `stale: last confirmed ${age(at)} ago` : "stale: never read";
}

function age(since) {
  if (!since) return "-";
  let s = Math.max(0, Math.floor((Date.now() + clockSkew) / 1000 - since));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

// Every second: ages tick against the server's clock; silence turns the page grey.
function tick() {
  for (const cell of document.querySelectorAll("[data-since]")) {
    const since = parseFloat(cell.dataset.since);
    const text = Number.isNaN(since) ? "-" : age(since);
    if (cell.textContent !== text) cell.textContent = text;   // no layout work for the same text
  }
  // A stale remote daemon's "last confirmed N s ago" counts on.
  for (const cell of document.querySelectorAll("section.stale [data-confirmed]")) {
    const at = parseFloat(cell.dataset.confirmed);
    cell.textContent = confirmed(Number.isNaN(at) ? null : at, true);
  }
  const quiet = (Date.now() - lastHeard) / 1000;
  if (lastHeard && quiet > 3) {
    document.body.classList.add("stale");
    live.textContent = `stale: last confirmed ${Math.floor(quiet)} s ago`;
    // Reconnect and start from a snapshot, but give a new socket 5 s for its first message
    // (a big snapshot takes a while): closing it every second would never let it arrive.
    if (socket && quiet > 5 && Date.now() - opened > 5000) socket.close();
  }
}

clockSkew = parseFloat(document.body.dataset.now) * 1000 - Date.now();
setInterval(tick, 1000);
connect();

// What a change would do (frontend/impact.py), as one line per VIP; never blocks the action.
async function impactOf(body) {
  if (body.server) return `This acts on ${body.server}; its impact is computed only for this deployment's VIPs.`;
  const q = new URLSearchParams({ action: body.action, backend: body.backend, pool: body.pool || "", weight: body.weight ?? "", flush: body.flush ? "1" : "" });
  try {
    const r = await (await fetch(`/view/impact/?${q}`, { credentials: "same-origin" })).json();
    return r.ok ? `Impact: ${r.message}.` : `No impact preview: ${r.message}`;
  } catch { return "No impact preview (the server did not answer)."; }
}

// Actions for a signed-in user who may use them (the page has these buttons only then).
const csrf = document.querySelector('meta[name="maglev-csrf"]');
if (csrf) {
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const cell = button.closest("td.actions");
    const body = { action: button.dataset.action };
    if (cell) Object.assign(body, { backend: cell.dataset.backend, frontend: cell.dataset.frontend, pool: cell.dataset.pool });
    else if (button.dataset.frontend) body.frontend = button.dataset.frontend;
    const server = (cell || button).dataset.server;
    if (server) body.server = server;                   // another daemon, through its gRPC API
    if (body.action === "weight") {
      const answer = prompt(`Weight 0-100 for ${body.backend} in ${body.frontend}/${body.pool} (add " flush" to flush its flows):`);
      if (answer === null) return;
      const [value, flush] = answer.trim().split(/\s+/);
      body.weight = Number(value); body.flush = flush === "flush";
    }
    // Before a weight change, a disable or a pause: say what it would do, and ask.
    if (["weight", "disable", "pause"].includes(body.action)) {
      const what = { weight: `Set ${body.backend}'s weight in ${body.frontend}/${body.pool} to ${body.weight}${body.flush ? " and flush its flows" : ""}?`,
        disable: `Disable ${body.backend}? Its flows are flushed.`, pause: `Pause ${body.backend}? Its flows drain.` }[body.action];
      if (!confirm(`${what}\n\n${await impactOf(body)}`)) return;
    }
    const response = await fetch("/view/action/", {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf.content },
      body: JSON.stringify(body), credentials: "same-origin",
    });
    let result;
    try { result = await response.json(); } catch { result = { ok: false, message: `refused (${response.status})` }; }
    const status = document.getElementById("action-result");
    status.textContent = result.message;
    status.className = result.ok ? "state-up" : "state-down";
  });
}

// vpp-maglev /view/fleet/: keeps the server-rendered fleet table live. It listens to /view/'s
// websocket (frontend/hub.py: a snapshot, then deltas and heartbeats) only to learn *when*
// something the table shows changed, and then re-fetches this page and swaps its <main>: the
// comparison itself stays on the server (frontend/fleet.py). Silence turns the page grey.

import { wholeMessages } from "./parts.js";

const live = document.getElementById("live");
// The fields the fleet table is made of; other changes (probes, ages) do not re-fetch it.
const FIELDS = ["kind", "name", "state", "active_pool", "vip", "effective", "vpp_buckets", "address", "stale", "error"];
let socket = null, opened = 0, epoch = null, seq = null, lastHeard = 0, seen = new Map(), items = new Map();

const whole = wholeMessages((m) => receive(m));

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/view/`);
  opened = Date.now();
  socket.onmessage = (e) => whole(JSON.parse(e.data));
  socket.onclose = () => { socket = null; setTimeout(connect, 1000); };
}

const signature = (item) => JSON.stringify(FIELDS.map((f) => item[f] ?? null));

// Remember the items' signatures; true when one that the table shows changed, came or went.
// A changed item comes as a patch of its changed fields (no "kind"): merged into what we hold.
function fold(changes) {
  let changed = false;
  for (const [key, change] of Object.entries(changes)) {
    const item = change === null || change.kind !== undefined ? change : { ...items.get(key), ...change };
    if (item === null) items.delete(key); else items.set(key, item);
    const next = item === null ? null : signature(item);
    if ((seen.get(key) ?? null) !== next) changed = true;
    if (next === null) seen.delete(key); else seen.set(key, next);
  }
  return changed;
}

function receive(m) {
  lastHeard = Date.now();
  document.body.classList.remove("stale");
  if (m.type === "snapshot") {
    epoch = m.epoch; seq = m.seq; seen = new Map(); items = new Map();
    fold(m.items);
    live.textContent = "live";
    refetch();                    // the page may be older than this snapshot
    return;
  }
  if (m.epoch !== epoch || (m.type === "delta" && m.base !== seq)) {
    if (socket) socket.send(JSON.stringify({ type: "resync" }));
    return;
  }
  if (m.type === "delta") {
    seq = m.seq;
    if (fold(m.items)) refetch();
  }
}

// One fetch at a time; changes during a fetch ask for one more afterwards.
let fetching = false, again = false;
async function refetch() {
  if (fetching) { again = true; return; }
  fetching = true;
  try {
    const response = await fetch(location.href, { credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const main = page.getElementById("fleet");
    if (response.ok && main) {
      document.getElementById("fleet").replaceWith(main);
      const summary = page.getElementById("summary");
      if (summary) document.getElementById("summary").replaceWith(summary);
    }
  } catch { /* the next change or reconnect tries again */ }
  finally {
    fetching = false;
    if (again) { again = false; refetch(); }
  }
}

// Every second: a page that hears nothing for 3 s says so, and reconnects after 5 s.
setInterval(() => {
  const quiet = (Date.now() - lastHeard) / 1000;
  if (lastHeard && quiet > 3) {
    document.body.classList.add("stale");
    live.textContent = `stale: last confirmed ${Math.floor(quiet)} s ago`;
    if (socket && quiet > 5 && Date.now() - opened > 5000) socket.close();  // a new one gets 5 s
  }
}, 1000);
connect();

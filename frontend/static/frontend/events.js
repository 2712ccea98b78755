// The admin's live event stream: the last events, then each new one, filtered in the page.
const body = document.querySelector("#events tbody");
const kind = document.getElementById("kind"), text = document.getElementById("text");
const follow = document.getElementById("follow"), live = document.getElementById("live");
const MAX_ROWS = 2000;

function describe(e) {
  const d = e.data || {};
  if (e.kind === "backend") return `${d.backend}: ${d.from} → ${d.to} (${d.reason})`;
  if (e.kind === "frontend") return `${d.frontend}: ${d.from} → ${d.to}`;
  return Object.entries(d).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
}

function shown(row) {
  return (!kind.value || row.dataset.kind === kind.value) &&
    (!text.value || row.textContent.toLowerCase().includes(text.value.toLowerCase()));
}

function add(e) {
  const row = document.createElement("tr");
  row.dataset.kind = e.kind;
  for (const value of [new Date(e.at * 1000).toISOString().slice(11, 23), e.kind, describe(e)]) {
    const cell = document.createElement("td");
    cell.textContent = value;          // text, never HTML: names come from the config
    row.append(cell);
  }
  row.hidden = !shown(row);
  body.append(row);
  while (body.rows.length > MAX_ROWS) body.deleteRow(0);
  if (follow.checked && !row.hidden) row.scrollIntoView({ block: "end" });
}

for (const control of [kind, text]) control.addEventListener("input", () => {
  for (const row of body.rows) row.hidden = !shown(row);
});

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/events/`);
  socket.onopen = () => { live.textContent = "live"; body.replaceChildren(); };
  socket.onmessage = (m) => { const e = JSON.parse(m.data); if (e.type === "event") add(e); };
  socket.onclose = (c) => {
    if (c.code === 4401) { live.textContent = "logged out: log in again to follow events"; return; }
    live.textContent = "reconnecting";
    setTimeout(connect, 1000);
  };
}
connect();

// A websocket message over the server's size limit comes in parts {part, parts} with the same
// type, epoch and seq (frontend/hub.py, frames). wholeMessages(handle) returns the function to
// give each received message: it merges the parts' items and calls handle once with the whole.

export function wholeMessages(handle) {
  let partial = null;
  return (m) => {
    if (m.parts === undefined) { partial = null; handle(m); return; }
    if (m.part === 0 || !partial || partial.seq !== m.seq || partial.epoch !== m.epoch || partial.type !== m.type) {
      partial = { ...m, items: {}, got: 0 };
    }
    Object.assign(partial.items, m.items);
    partial.got += 1;
    if (partial.got < m.parts) return;
    const { part, parts, got, ...message } = partial;
    partial = null;
    handle({ ...message, now: m.now });
  };
}

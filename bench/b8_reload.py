"""B8: config reload with 10,000 backends, 1% changed.

What runs: one nginx listening on 10,000 loopback addresses 127.1.x.y (see B5) and our Runtime
in this process with 10,000 HTTP backends (interval 5 s: 2,000 probes/s of background load, a
third of what one loop sustains, so the reload is measured on a working engine, not a
saturated one) in 100 frontends of 100 backends, from maglev.yaml text made in code.

What is measured, per reload (3 of them; medians reported): each reload moves a further 1% of
the backends (100, spread over the frontends) to a second healthcheck (same target, another
path), so each new config differs from the running one in exactly 1% of the backends.
  - apply: on the runtime thread, from a marker callback queued just before `apply_config`'s
    callback to one queued just after it (the loop runs callbacks in order), i.e. the time
    `_apply_config` itself takes, transitions and weights included;
  - full path: `parse_config` of the YAML text (main thread) + from calling `apply_config` to
    the end marker running on the loop (queueing included).
Then checked: every changed backend was restarted (it has an up → unknown `config reload`
transition) and no unchanged backend was (its transition history is exactly as before and no
transition listener call named it). Target: ≤ 1 s, unchanged backends not restarted.
"""

from __future__ import annotations

import threading
import time

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

from health.checker.states import State
from health.config import parse_config
from health.engine.runtime import Runtime

FULL = {"backends": 10_000, "per_frontend": 100, "reloads": 3, "interval": "5s"}
SMOKE = {"backends": 200, "per_frontend": 100, "reloads": 1, "interval": "1s"}


def config_text(
    addresses: list[str], port: int, per_frontend: int, interval: str, moved: set[int]
) -> str:
    """maglev.yaml: backends b<i> on check `web`, or `web2` when i is in `moved`."""
    check = "{{ type: http, port: {port}, interval: {i}, timeout: 1s, params: {{ path: {p} }} }}"
    lines = [
        "maglev:",
        "  healthchecks:",
        "    web: " + check.format(port=port, i=interval, p="/a"),
        "    web2: " + check.format(port=port, i=interval, p="/b"),
        "  backends:",
    ]
    lines += [
        f"    b{i}: {{ address: {a}, healthcheck: {'web2' if i in moved else 'web'} }}"
        for i, a in enumerate(addresses)
    ]
    lines.append("  frontends:")
    for f, start in enumerate(range(0, len(addresses), per_frontend)):
        members = ", ".join(f"b{i}: {{}}" for i in range(start, start + per_frontend))
        lines += [
            f"    f{f}:",
            f"      address: 198.51.100.{f % 250 + 1}",
            "      protocol: tcp",
            f"      port: {80 + f // 250}",
            f"      pools: [ {{ name: p, backends: {{ {members} }} }} ]",
        ]
    return "\n".join(lines) + "\n"


def reload_once(rt: Runtime, text: str, changed: set[str], seen: list) -> dict:
    before = {name: b.transitions for name, b in rt.backends().items()}
    seen.clear()
    t_parse = time.perf_counter()
    config = parse_config(text)
    parse_s = time.perf_counter() - t_parse
    marks: dict[str, float] = {}
    done = threading.Event()

    def mark(key: str) -> None:
        marks[key] = time.perf_counter()
        if key == "end":
            done.set()

    submitted = time.perf_counter()
    rt.call(lambda: mark("start"))
    rt.apply_config(config)
    rt.call(lambda: mark("end"))
    if not done.wait(60):
        raise SystemExit("the reload did not finish in 60 s")
    after = rt.backends()
    touched = {name for name, b in after.items() if b.transitions != before[name]}
    touched |= {name for name, *_ in seen}
    restarted_unchanged = len(touched - changed)
    reloaded = {name for name, frm, to, reason in seen if reason == "config reload"}
    return {
        "parse": parse_s,
        "apply": marks["end"] - marks["start"],
        "full": parse_s + marks["end"] - submitted,
        "restarted_unchanged": restarted_unchanged,
        "changed_restarted": len(reloaded & changed),
    }


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    n, per = size["backends"], size["per_frontend"]
    addresses = common.loopback_addresses(n)
    port = common.free_port()
    nginx = common.Nginx([(addresses, port)])
    rt = Runtime("b8", parse_config(config_text(addresses, port, per, size["interval"], set())))
    seen: list[tuple[str, str, str, str]] = []
    rt.transition_listeners.append(
        lambda name, t, _r: seen.append((name, t.from_state.value, t.to_state.value, t.reason))
    )
    results = []
    moved: set[int] = set()
    common.say(f"B8: {n} HTTP backends (interval {size['interval']}), {n // per} frontends")
    try:
        started = time.monotonic()
        rt.start()
        if not common.wait_until(lambda: all(s is State.UP for s in rt.states().values()), 180):
            raise SystemExit("not every backend came up")
        common.say(f"  all up after {time.monotonic() - started:.1f}s")
        for r in range(size["reloads"]):
            new = set(range(r + 1, n, 100))  # 1%: every 100th backend, another offset each time
            moved |= new
            text = config_text(addresses, port, per, size["interval"], moved)
            res = reload_once(rt, text, {f"b{i}" for i in new}, seen)
            results.append(res)
            common.say(
                f"  reload {r}: {len(new)} changed; parse {res['parse']:.3f}s, apply "
                f"{res['apply']:.3f}s on the runtime thread, full path {res['full']:.3f}s; "
                f"{res['changed_restarted']}/{len(new)} changed restarted, "
                f"{res['restarted_unchanged']} unchanged restarted"
            )
            common.wait_until(lambda: all(s is State.UP for s in rt.states().values()), 60, 0.2)
    finally:
        rt.stop()
        nginx.stop()
    apply_s = common.median(r["apply"] for r in results)
    full_s = common.median(r["full"] for r in results)
    parse_s = common.median(r["parse"] for r in results)
    wrong = max(r["restarted_unchanged"] for r in results)
    missed = sum(n // 100 - r["changed_restarted"] for r in results)
    common.say(
        f"median: apply {apply_s:.3f}s, parse {parse_s:.3f}s, full path {full_s:.3f}s "
        f"({'meets' if full_s <= 1.0 else 'misses'} <= 1 s); unchanged restarted: {wrong}, "
        f"changed not restarted: {missed}"
    )
    common.figure("b8_apply", apply_s, "s", "<=1.0")
    common.figure("b8_parse_and_apply", full_s, "s", "<=1.0")
    common.figure("b8_unchanged_restarted", wrong, "backends", "0")
    common.figure("b8_changed_not_restarted", missed, "backends", "0")
    common.print_figures()


if __name__ == "__main__":
    main()

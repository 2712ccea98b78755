"""B8: config reload with 10,000 backends, 1% changed, through the real reload path.

What runs: one nginx listening on 10,000 loopback addresses 127.1.x.y (see B5), and in this
process the embedded host as `maglevd` runs it: a SQLite database in a temporary data
directory, the deployment imported from a maglev.yaml file (which then owns the config), and
the runtime hosted from the database (`host_runtime`: persistence, the service layer's
changes) with 10,000 HTTP backends (interval 5 s: 2,000 probes/s of background load) in 100
frontends of 100 backends.

What is measured, per reload (3 of them; medians reported): each reload rewrites the file so a
further 1% of the backends (100, spread over the frontends) move to a second healthcheck
(same target, another path), and calls the service layer's `reload_config`, which is what
SIGHUP, the gRPC ReloadConfig call and the Celery task do.
  - full: from the call to the moment the runtime has applied the new config: read the file,
    parse and validate it, import it into the database (audited), read the deployment back
    (the host's change hook) and apply it on the runtime thread (a marker callback queued
    right after the apply runs);
  - parse: `parse_config` of the same text alone, for the breakdown;
  - apply: on the runtime thread, `_apply_config` itself (marker callbacks around it);
  - floor: a bare parse of the same file with PyYAML's C loader, `yaml.load(f,
    Loader=yaml.CSafeLoader)`, timed inside a Python process of its own (GC off, as the
    reload path pauses it; start-up not counted), right before and right after each reload;
    the figure is full / floor (medians).
Then checked: every changed backend was restarted (it has an up → unknown `config reload`
transition) and no unchanged backend was (its transition history is exactly as before and no
transition listener call named it). Targets: full ≤ 3× the floor, unchanged backends not
restarted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

from health.checker.states import State
from health.config import parse_config
from health.engine.runtime import Runtime

DEPLOYMENT = "b8"
TARGET = "<=3"

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


_BARE = (
    "import gc, sys, time, yaml\n"
    "gc.disable()\n"
    "t0 = time.perf_counter()\n"
    "with open(sys.argv[1]) as f:\n"
    "    yaml.load(f, Loader=yaml.CSafeLoader)\n"
    "print(time.perf_counter() - t0)\n"
)


def bare_parse(path: Path) -> float:
    """Seconds for PyYAML's C loader to parse the file, nothing else (the floor), in a Python
    process of its own: no Django heap around it, and this process's probe loop is not held
    up (the C loader keeps the GIL for the whole parse)."""
    done = subprocess.run(
        [sys.executable, "-c", _BARE, str(path)], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def reload_once(rt: Runtime, path: Path, text: str, changed: set[str], seen: list) -> dict:
    from health import services

    before = {name: b.transitions for name, b in rt.backends().items()}
    seen.clear()
    t_parse = time.perf_counter()
    parse_config(text)
    parse_s = time.perf_counter() - t_parse
    marks: dict[str, float] = {}
    done = threading.Event()

    def mark(key: str) -> None:
        marks[key] = time.perf_counter()
        if key == "end":
            done.set()

    # The apply alone: marker callbacks right around the one the host's hook queues.
    original = rt.apply_config

    def apply_config(config, *args, **kwargs) -> None:
        rt.call(lambda: mark("start"))
        original(config, *args, **kwargs)
        rt.call(lambda: mark("end"))

    path.write_text(text)
    floor = [bare_parse(path)]
    rt.apply_config = apply_config  # type: ignore[method-assign]
    try:
        submitted = time.perf_counter()
        services.reload_config(DEPLOYMENT, services.Actor("b8"))
        if not done.wait(60):
            raise SystemExit("the reload did not reach the runtime in 60 s")
    finally:
        del rt.apply_config
    floor.append(bare_parse(path))
    after = rt.backends()
    touched = {name for name, b in after.items() if b.transitions != before[name]}
    touched |= {name for name, *_ in seen}
    restarted_unchanged = len(touched - changed)
    reloaded = {name for name, frm, to, reason in seen if reason == "config reload"}
    return {
        "parse": parse_s,
        "floor": floor,
        "apply": marks["end"] - marks["start"],
        "full": marks["end"] - submitted,
        "restarted_unchanged": restarted_unchanged,
        "changed_restarted": len(reloaded & changed),
    }


def setup_django(data_dir: str) -> None:
    """This process as maglevd: settings, a fresh SQLite database in `data_dir`."""
    os.environ["MAGLEV_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "maglev_site.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    n, per = size["backends"], size["per_frontend"]
    addresses = common.loopback_addresses(n)
    port = common.free_port()
    nginx = common.Nginx([(addresses, port)])
    data_dir = tempfile.TemporaryDirectory(prefix="b8-")
    setup_django(data_dir.name)
    from health import services
    from health.engine.host import host_runtime

    path = Path(data_dir.name) / "maglev.yaml"
    path.write_text(config_text(addresses, port, per, size["interval"], set()))
    services.import_config_text(
        path.read_text(), DEPLOYMENT, services.Actor("b8"), config_file=str(path)
    )
    hosted = host_runtime(DEPLOYMENT)
    rt = hosted.runtime
    seen: list[tuple[str, str, str, str]] = []
    rt.transitioned.connect(
        lambda name, t, _r: seen.append((name, t.from_state.value, t.to_state.value, t.reason))
    )
    results = []
    moved: set[int] = set()
    common.say(f"B8: {n} HTTP backends (interval {size['interval']}), {n // per} frontends")
    try:
        started = time.monotonic()
        if not common.wait_until(lambda: all(s is State.UP for s in rt.states().values()), 180):
            states = [s.value for s in rt.states().values()]
            codes = {b.last_code for b in rt.backends().values()}
            raise SystemExit(
                f"not every backend came up: {len(states)} backends, "
                f"{states.count('up')} up; probe codes {sorted(codes)[:5]}"
            )
        common.say(f"  all up after {time.monotonic() - started:.1f}s")
        for r in range(size["reloads"]):
            new = set(range(r + 1, n, 100))  # 1%: every 100th backend, another offset each time
            moved |= new
            text = config_text(addresses, port, per, size["interval"], moved)
            res = reload_once(rt, path, text, {f"b{i}" for i in new}, seen)
            results.append(res)
            common.say(
                f"  reload {r}: {len(new)} changed; full path {res['full']:.3f}s (parse alone "
                f"{res['parse']:.3f}s, apply {res['apply']:.3f}s on the runtime thread; bare "
                f"C-loader parse {' / '.join(f'{x:.3f}' for x in res['floor'])}s); "
                f"{res['changed_restarted']}/{len(new)} changed restarted, "
                f"{res['restarted_unchanged']} unchanged restarted"
            )
            common.wait_until(lambda: all(s is State.UP for s in rt.states().values()), 60, 0.2)
    finally:
        hosted.close()
        nginx.stop()
        data_dir.cleanup()
    apply_s = common.median(r["apply"] for r in results)
    full_s = common.median(r["full"] for r in results)
    parse_s = common.median(r["parse"] for r in results)
    wrong = max(r["restarted_unchanged"] for r in results)
    missed = sum(n // 100 - r["changed_restarted"] for r in results)
    floor_s = common.median(x for r in results for x in r["floor"])
    common.say(
        f"median: full path {full_s:.3f}s, parse {parse_s:.3f}s, apply {apply_s:.3f}s, bare "
        f"C-loader parse {floor_s:.3f}s; unchanged restarted: {wrong}, changed not restarted: "
        f"{missed}"
    )
    common.compare("b8_reload_ratio", full_s, floor_s, "s", TARGET, "yaml_cload")
    common.figure("b8_apply", apply_s, "s", "none")
    common.figure("b8_reload", full_s, "s", "none", f"yaml_cload_{floor_s:.3f}s")
    common.figure("b8_unchanged_restarted", wrong, "backends", "0")
    common.figure("b8_changed_not_restarted", missed, "backends", "0")
    common.print_figures()


if __name__ == "__main__":
    main()

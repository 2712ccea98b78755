"""The probe runtime's metrics as Prometheus text (exposition format 0.0.4), written directly.

With 10,000 backends a scrape has about 300,000 series. Building prometheus_client metric
families for them took 7 s of CPU per scrape in the probe process (B7), long enough to starve
the probe loop into false timeouts. Here each backend's label set is escaped once and kept,
lines are joined from ready-made pieces, blocks that only change on a transition (state,
enabled) are reused while they hold, and the GIL is handed over between chunks of backends so
the probe loop keeps its turns while a scrape runs.

Pure: no Django, no prometheus_client; the /metrics view puts this after the registry's text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate

from health.checker.states import FrontendState, State

BACKEND_STATES: tuple[str, ...] = tuple(s.value for s in State)
FRONTEND_STATES: tuple[str, ...] = tuple(s.value for s in FrontendState)
CHUNK = 500  # backends rendered between two hand-overs of the GIL


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote, newline escaped."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


@dataclass(frozen=True)
class BackendRow:
    """What a scrape needs of one backend, read from its runner."""

    name: str
    state: str
    counter: int
    last_probe_at: float | None  # Unix time
    last_latency: float | None = None  # seconds the last probe took


@dataclass(frozen=True)
class FrontendRow:
    name: str
    state: str
    weights: dict[tuple[str, str], tuple[int, int, bool]]  # (pool, backend) → (conf, eff, flush)


class ProbeCounts:
    """One backend's probe counts and duration histogram, as plain numbers."""

    __slots__ = ("buckets", "count", "counts", "sum", "type")

    def __init__(self, ctype: str, nbuckets: int) -> None:
        self.type = ctype
        self.counts: dict[tuple[bool, str], int] = {}
        self.buckets = [0] * nbuckets
        self.sum = 0.0
        self.count = 0


def _header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


class Exposition:
    """Renders the runtime's families. Keeps escaped label sets and reusable blocks between
    scrapes, so it must be used by one scrape at a time (`render` takes the caller's lock)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._le = [*(f'le="{b}"}} ' for b in bounds), 'le="+Inf"} ']
        self._labels: dict[str, str] = {}  # name → escaped name
        self._state_blocks: dict[tuple[str, str], str] = {}  # (backend, state) → lines
        self._heads: dict[str, list[str]] = {}  # histogram label set → its bucket line starts
        self._gauge_heads: dict[str, tuple[str, str, str, str]] = {}  # backend → line starts
        self._weight_heads: dict[tuple[str, str, str], str] = {}  # (frontend, pool, backend)
        self._yield = True

    def _esc(self, name: str) -> str:
        e = self._labels.get(name)
        if e is None:
            e = self._labels[name] = escape(name)
        return e

    def _backend_heads(self, name: str) -> tuple[str, str, str, str]:
        """The start of each per-backend gauge line, up to its value."""
        h = self._gauge_heads.get(name)
        if h is None:
            label = f'{{backend="{self._esc(name)}"}} '
            h = self._gauge_heads[name] = (
                f"maglev_backend_health{label}",
                f"maglev_backend_enabled{label}",
                f"maglev_backend_last_probe_age_seconds{label}",
                f"maglev_backend_last_probe_duration_seconds{label}",
            )
        return h

    def _state_block(self, name: str, state: str) -> str:
        key = (name, state)
        block = self._state_blocks.get(key)
        if block is None:
            e = self._esc(name)
            block = "".join(
                f'maglev_backend_state{{backend="{e}",state="{s}"}} '
                + ("1.0\n" if s == state else "0.0\n")
                for s in BACKEND_STATES
            )
            self._state_blocks[key] = block
        return block

    def _chunks(self, items: list) -> Iterator[list]:
        for i in range(0, len(items), CHUNK):
            if i and self._yield:
                time.sleep(0)  # let the probe loop run: it may be waiting for the GIL
            yield items[i : i + CHUNK]

    def render(
        self,
        backends: list[BackendRow],
        frontends: Iterable[FrontendRow],
        probes: dict[str, ProbeCounts],
        transitions: dict[tuple[str, str, str], int],
        *,
        per_backend_histogram: bool,
        now: float,
    ) -> str:
        out: list[str] = []
        add = out.append
        self._forget_missing(backends, transitions)

        add(_header("maglev_backend_state", "gauge", "1 for the backend's current state."))
        for chunk in self._chunks(backends):
            for b in chunk:
                add(self._state_block(b.name, b.state))
        heads = [self._backend_heads(b.name) for b in backends]
        rows = list(zip(heads, backends, strict=True))
        add(_header("maglev_backend_health", "gauge", "The rise/fall counter (up when >= rise)."))
        for chunk in self._chunks(rows):
            for h, b in chunk:
                add(f"{h[0]}{b.counter}.0\n")
        add(_header("maglev_backend_enabled", "gauge", "0 when disabled by an operator."))
        for chunk in self._chunks(rows):
            for h, b in chunk:
                add(h[1] + ("0.0\n" if b.state == "disabled" else "1.0\n"))
        add(
            _header(
                "maglev_backend_last_probe_age_seconds",
                "gauge",
                "Seconds since the backend's last probe finished (a stuck checker grows it).",
            )
        )
        for chunk in self._chunks(rows):
            for h, b in chunk:
                if b.last_probe_at is not None:
                    add(f"{h[2]}{max(0.0, now - b.last_probe_at):.6f}\n")
        add(
            _header(
                "maglev_backend_last_probe_duration_seconds",
                "gauge",
                "How long the backend's last probe took, start to verdict.",
            )
        )
        for chunk in self._chunks(rows):
            for h, b in chunk:
                if b.last_latency is not None:
                    add(f"{h[3]}{b.last_latency:.6f}\n")

        fronts = list(frontends)
        add(_header("maglev_frontend_state", "gauge", "1 for the frontend's current state."))
        for f in fronts:
            e = self._esc(f.name)
            for s in FRONTEND_STATES:
                add(f'maglev_frontend_state{{frontend="{e}",state="{s}"}} ')
                add("1.0\n" if f.state == s else "0.0\n")
        add(
            _header(
                "maglev_frontend_pool_backend_weight",
                "gauge",
                "Effective weight of a backend in a frontend's pool.",
            )
        )
        if len(self._weight_heads) > 2 * sum(len(f.weights) for f in fronts) + 1024:
            self._weight_heads.clear()
        weight_heads = self._weight_heads
        for f in fronts:
            for key, (_conf, effective, _flush) in list(f.weights.items()):
                head = weight_heads.get((f.name, *key))
                if head is None:
                    pool, backend = key
                    head = weight_heads[(f.name, *key)] = (
                        f'maglev_frontend_pool_backend_weight{{frontend="{self._esc(f.name)}",'
                        f'pool="{self._esc(pool)}",backend="{self._esc(backend)}"}} '
                    )
                add(f"{head}{effective}.0\n")

        add(_header("maglev_backend_transitions_total", "counter", "Backend state transitions."))
        for (name, frm, to), n in list(transitions.items()):
            add(
                f'maglev_backend_transitions_total{{backend="{self._esc(name)}",from="{frm}",'
                f'to="{to}"}} {n}.0\n'
            )

        self._render_probes(out, probes, per_backend_histogram)
        return "".join(out)

    def _render_probes(
        self, out: list[str], probes: dict[str, ProbeCounts], per_backend: bool
    ) -> None:
        add = out.append
        items = list(probes.items())
        add(_header("maglev_probe_total", "counter", "Probes run, by result code."))
        for chunk in self._chunks(items):
            for name, p in chunk:
                e = self._esc(name)
                for (ok, code), n in list(p.counts.items()):
                    result = "success" if ok else "failure"
                    add(
                        f'maglev_probe_total{{backend="{e}",type="{p.type}",result="{result}",'
                        f'code="{self._esc(code)}"}} {n}.0\n'
                    )
        add(
            _header(
                "maglev_probe_duration_seconds", "histogram", "Time from probe start to verdict."
            )
        )
        if per_backend:
            groups = [(f'backend="{self._esc(n)}",type="{p.type}"', [p]) for n, p in items]
        else:
            # One histogram per probe type: the per-backend one is opt-in (10,000 backends make
            # 160,000 series of it).
            by_type: dict[str, list[ProbeCounts]] = {}
            for _n, p in items:
                by_type.setdefault(p.type, []).append(p)
            groups = [(f'type="{t}"', ps) for t, ps in sorted(by_type.items())]
        for chunk in self._chunks(groups):
            for labels, ps in chunk:
                if len(ps) == 1:
                    counts, total, n = ps[0].buckets, ps[0].sum, ps[0].count
                else:
                    counts = [sum(col) for col in zip(*(p.buckets for p in ps), strict=True)]
                    total, n = sum(p.sum for p in ps), sum(p.count for p in ps)
                heads = self._heads.get(labels)
                if heads is None:
                    head = f"maglev_probe_duration_seconds_bucket{{{labels},"
                    heads = self._heads[labels] = [head + bound for bound in self._le]
                add(
                    "".join([f"{h}{c}.0\n" for h, c in zip(heads, accumulate(counts), strict=True)])
                )
                add(f"maglev_probe_duration_seconds_count{{{labels}}} {n}.0\n")
                add(f"maglev_probe_duration_seconds_sum{{{labels}}} {total!r}\n")

    def _forget_missing(
        self, backends: list[BackendRow], transitions: dict[tuple[str, str, str], int]
    ) -> None:
        """Keep the caches to names that still exist, so a churning config can't grow them."""
        if len(self._labels) > 2 * (len(backends) + len(transitions)) + 1024:
            self._labels.clear()
        if len(self._state_blocks) > 2 * len(backends) + 1024:
            self._state_blocks.clear()
        limit = 2 * len(backends) + 1024
        for cache in (self._heads, self._gauge_heads):
            if len(cache) > limit:
                cache.clear()

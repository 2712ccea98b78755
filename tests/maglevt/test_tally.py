"""health/maglevt/tally.py: hostile header values, the cap on distinct values, drain detection."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from health.maglevt.tally import (
    EMPTY,
    MAX_VALUE_CHARS,
    MAX_VALUES,
    MISSING,
    OTHER,
    BackendTally,
    clean_value,
)

UNSAFE = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x202E, 0x2066]}


@given(st.one_of(st.text(max_size=500), st.binary(max_size=500)))
def test_a_cleaned_value_is_short_and_has_no_control_characters(raw):
    value = clean_value(raw)
    assert 0 < len(value) <= MAX_VALUE_CHARS
    assert not UNSAFE & set(value)
    assert value == value.strip()


def test_escape_sequences_lose_their_escape_and_long_values_are_cut():
    assert clean_value(b"\x1b[31mweb1\x07") == "[31mweb1"
    assert clean_value("web\u202e1") == "web1"
    assert clean_value(b"\r\n\t ") == EMPTY
    long = clean_value("x" * 1000)
    assert len(long) == MAX_VALUE_CHARS
    assert long.endswith("…")
    assert clean_value(b"caf\xc3\xa9 \xff") == "café \ufffd"


def test_values_past_the_cap_are_counted_as_other():
    tally = BackendTally()
    for i in range(MAX_VALUES + 10):
        tally.add(f"b{i}", 1.0)
    tally.add("b0", 1.0)
    counts = tally.counts()
    assert len(counts) == MAX_VALUES + 1
    assert counts[OTHER] == 10
    assert counts["b0"] == 2
    assert list(counts)[-1] == OTHER
    assert tally.add("yet-another", 2.0) == OTHER


@given(st.lists(st.text(min_size=1, max_size=3), max_size=300))
def test_the_tally_never_holds_more_than_the_cap_and_loses_no_answer(values):
    tally = BackendTally(max_values=8)
    for v in values:
        tally.add(v, 0.0)
    counts = tally.counts()
    assert len([k for k in counts if k != OTHER]) <= 8
    assert sum(counts.values()) == len(values)


def test_a_backend_that_stops_getting_flows_while_others_do_is_drained():
    tally = BackendTally()
    tally.add("web1", 0.0)
    tally.add("web2", 0.0)
    for t in range(1, 50):
        tally.add("web1", t / 10)
    assert tally.drained(4.9, after=3.0) == ["web2"]
    assert tally.drained(2.9, after=3.0) == []  # not yet long enough


def test_nothing_is_drained_when_the_vip_answers_nobody():
    tally = BackendTally()
    tally.add("web1", 0.0)
    tally.add("web2", 1.0)
    assert tally.drained(10.0, after=3.0) == []


def test_markers_are_never_drained():
    tally = BackendTally(max_values=1)
    tally.add("web1", 0.0)
    tally.add("web2", 0.0)  # counted as OTHER
    tally.add(MISSING, 0.0)
    tally.add(EMPTY, 0.0)
    tally.add("web1", 5.0)
    assert tally.drained(5.5, after=3.0) == []


def test_answers_on_a_reused_connection_are_not_new_flows():
    tally = BackendTally()
    tally.add("web1", 0.0)
    tally.add("web2", 0.0)
    for t in range(1, 50):
        tally.add("web2", t / 10, new_flow=False)
        tally.add("web1", t / 10)
    assert tally.counts()["web2"] == 50
    assert tally.drained(4.9, after=3.0) == ["web2"]


events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.floats(0, 0.5), st.booleans()),
    max_size=60,
)


@given(events, st.floats(0, 5), st.floats(0.1, 3))
def test_drained_is_exactly_the_reference_rule(steps, extra, after):
    """Replay answers (value, gap, new flow?) and compare with the rule in plain words."""
    tally = BackendTally()
    now = 0.0
    last: dict[str, float] = {}
    for value, gap, new_flow in steps:
        now += gap
        tally.add(value, now, new_flow)
        if new_flow:
            last[value] = now
    now += extra
    latest = max(last.values(), default=None)
    vip_answers = latest is not None and now - latest < after
    expected = sorted(v for v, t in last.items() if vip_answers and now - t >= after)
    assert tally.drained(now, after) == expected

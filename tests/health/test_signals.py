"""The one in-process observer mechanism."""

from __future__ import annotations

from health.signals import Signal


def test_listeners_run_in_order_a_failing_one_is_logged_and_disconnect_works(caplog):
    sig: Signal[[int]] = Signal("test")
    seen: list[tuple[str, int]] = []
    first = sig.connect(lambda n: seen.append(("first", n)))

    def broken(n: int) -> None:
        raise RuntimeError("boom")

    sig.connect(broken)
    sig.connect(lambda n: seen.append(("last", n)))
    sig.emit(1)
    assert seen == [("first", 1), ("last", 1)]
    assert "listener failed" in caplog.text
    first()
    first()  # twice is harmless
    sig.emit(2)
    assert seen[-1] == ("last", 2)
    assert len(sig) == 2

"""Reply values the dispatcher may encode once and reuse (see Dispatcher._body)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, NamedTuple


class Cached(NamedTuple):
    """A reply whose fields are a pure function of `key`: the dispatcher encodes
    `build(*args)` once and then only puts the message id and context in front. For dumps of
    thousands of details that mostly did not change since the last dump (a no-op sync reads
    16,000 of them). A named tuple: one is made per detail."""

    key: Hashable
    build: Callable[..., dict[str, Any]]
    args: tuple = ()

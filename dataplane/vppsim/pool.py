"""A vppinfra-style pool: stable indexes, freed slots reused last-freed-first.

VPP exposes pool indexes (VIP numbers in `show lb vips`, counter indexes in the stats segment,
the order of dumps), so the simulator allocates them the same way. A slot keeps its object after
being freed, as pool memory keeps its bytes: VPP re-initialises only some fields on reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Pool(Generic[T]):
    """Slots 0..len-1, some free; iteration yields used slots in index order."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._slots: list[T] = []
        self._free: list[int] = []  # a stack: the last freed index is reused first

    def get(self) -> int:
        """Allocate a slot and return its index; its object may hold a previous tenant's data."""
        if self._free:
            return self._free.pop()
        self._slots.append(self._factory())
        return len(self._slots) - 1

    def put(self, index: int) -> None:
        if not self.is_free(index):
            self._free.append(index)

    def is_free(self, index: int) -> bool:
        return not 0 <= index < len(self._slots) or index in self._free

    def __getitem__(self, index: int) -> T:
        return self._slots[index]

    def __setitem__(self, index: int, item: T) -> None:
        self._slots[index] = item

    def items(self) -> Iterator[tuple[int, T]]:
        free = set(self._free)
        for i, item in enumerate(self._slots):
            if i not in free:
                yield i, item

    def __len__(self) -> int:
        """pool_elts: the number of used slots."""
        return len(self._slots) - len(self._free)

    @property
    def capacity(self) -> int:
        """pool_len: used and free slots."""
        return len(self._slots)

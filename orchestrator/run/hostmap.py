"""An immutable host -> run mapping that a decision updates without copying the whole fleet.

``decide`` returns a new state for every event; copying a dict of 10,000 hosts for each of ~100,000 events
would dominate a large run. A :class:`HostMap` is a shared base dict plus a small overlay of changed hosts;
``updated`` copies only the overlay, and folds it into a new base once it grows past a bound, so a lookup
stays two dict probes and an update costs O(overlay) amortised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")
FOLD = 512


class HostMap(Mapping[str, V], Generic[V]):
    __slots__ = ("_base", "_over")

    def __init__(self, base: Mapping[str, V], over: Mapping[str, V] | None = None) -> None:
        self._base: dict[str, V] = dict(base) if not isinstance(base, dict) else base
        self._over: dict[str, V] = dict(over or {})

    def __getitem__(self, key: str) -> V:
        if key in self._over:
            return self._over[key]
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        return key in self._over or key in self._base

    def __iter__(self) -> Iterator[str]:
        yield from self._base
        yield from (k for k in self._over if k not in self._base)

    def __len__(self) -> int:
        return len(self._base) + sum(1 for k in self._over if k not in self._base)

    def __repr__(self) -> str:
        return f"HostMap({dict(self.items())!r})"

    def updated(self, changes: Mapping[str, V]) -> HostMap[V]:
        """A new map with ``changes`` applied; this one is left as it was."""
        if not changes:
            return self
        over = {**self._over, **changes}
        if len(over) > FOLD:
            return HostMap({**self._base, **over})
        return HostMap(self._base, over)

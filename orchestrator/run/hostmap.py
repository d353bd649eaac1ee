"""An immutable host -> run mapping that a decision updates without copying the whole fleet.

``decide`` returns a new state for every event; copying a dict of 10,000 hosts for each of ~100,000 events
would dominate a large run. A :class:`HostMap` is a shared base dict plus a small overlay of changed hosts;
``updated`` copies only the overlay, and folds it into a new base once it grows past a bound, so a lookup
stays two dict probes and an update costs O(overlay) amortised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
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


Key = tuple[str, str, str]  # host, phase, step


class Outstanding(AbstractSet[Key]):
    """The steps started and not yet reported, ``(host, phase, step)``, kept per host in a :class:`HostMap`
    so that a decision changing one host's step does not copy the steps of a thousand hosts in flight."""

    __slots__ = ("_by_host", "_len")

    def __init__(self, by_host: HostMap[frozenset[tuple[str, str]]] | None = None, length: int | None = None) -> None:
        self._by_host: HostMap[frozenset[tuple[str, str]]] = by_host if by_host is not None else HostMap({})
        self._len = length if length is not None else sum(len(v) for v in self._by_host.values())

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 3:
            return False
        return (item[1], item[2]) in self._by_host.get(item[0], frozenset())

    def __iter__(self) -> Iterator[Key]:
        for host, steps in self._by_host.items():
            for phase, step in steps:
                yield (host, phase, step)

    def __len__(self) -> int:
        return self._len

    def __hash__(self) -> int:
        return self._hash()

    def __repr__(self) -> str:
        return f"Outstanding({sorted(self)!r})"

    def steps_of(self, host: str) -> frozenset[tuple[str, str]]:
        return self._by_host.get(host, frozenset())

    def updated(self, changes: Mapping[str, frozenset[tuple[str, str]]]) -> Outstanding:
        if not changes:
            return self
        delta = sum(len(v) - len(self.steps_of(h)) for h, v in changes.items())
        return Outstanding(self._by_host.updated(changes), self._len + delta)

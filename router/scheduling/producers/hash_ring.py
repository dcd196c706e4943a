"""A consistent-hash ring with virtual nodes (Karger et al., STOC 1997).

Each worker owns `vnodes_per_worker` points on a 64-bit circle; a key belongs to
the owner of the first point at or after it, wrapping past the top:

        0 ──────────── a ─── b ───────── a ────── c ──── 2⁶⁴
                 key ──┘ owner a   key ──┘ owner a

Adding a worker only takes the arcs in front of its own points; removing one
hands its arcs to the next points. Every other key keeps its owner, which is
what lets DualMap grow and shrink the pool without moving most prefixes.

Points and keys are mixed with the ring's `seed` (XXH3-64), so rings with
different seeds place everything independently: the owner of a key on one ring
says nothing about its owner on another. Points that collide (odds ~n²/2⁶⁵) are
ordered by worker id, so the ring never depends on the order workers joined.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

import xxhash

_KEY_BYTES = 8
_KEY_MASK = (1 << 64) - 1


class HashRing:
    """Worker ids on a seeded circle; `lookup(key)` names the worker owning `key`."""

    __slots__ = ("_members", "_owners", "_points", "seed", "vnodes_per_worker")

    def __init__(self, vnodes_per_worker: int = 100, seed: int = 0) -> None:
        if vnodes_per_worker < 1:
            raise ValueError(f"vnodes_per_worker must be >= 1, got {vnodes_per_worker}")
        self.vnodes_per_worker = vnodes_per_worker
        self.seed = seed
        # Parallel lists sorted by point: `bisect` over `_points`, owner at the same index.
        self._points: list[int] = []
        self._owners: list[str] = []
        self._members: set[str] = set()

    @property
    def members(self) -> frozenset[str]:
        return frozenset(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, worker_id: object) -> bool:
        return worker_id in self._members

    def add(self, worker_id: str) -> None:
        """Places `worker_id`'s points; adding a member again changes nothing."""
        self._add_all([worker_id])

    def remove(self, worker_id: str) -> None:
        """Takes `worker_id`'s points off; removing a non-member changes nothing."""
        self._remove_all({worker_id})

    def sync(self, worker_ids: Iterable[str]) -> None:
        """Makes the members exactly `worker_ids`, touching only what changed."""
        wanted = set(worker_ids)
        if wanted.symmetric_difference(self._members):
            self._remove_all(self._members - wanted)
            self._add_all(wanted - self._members)

    def lookup(self, key: int) -> str:
        """The worker owning `key` (any int; reduced to 64 bits). LookupError when empty."""
        if not self._owners:
            raise LookupError(f"hash ring (seed {self.seed}) has no workers")
        at = bisect_left(self._points, self._position(key))
        return self._owners[at % len(self._owners)]

    def walk(self, key: int) -> Iterator[str]:
        """Distinct workers clockwise from `key`'s owner: the owner first, then each next."""
        if not self._owners:
            return
        start = bisect_left(self._points, self._position(key))
        num_points = len(self._owners)
        seen: set[str] = set()
        for step in range(num_points):
            owner = self._owners[(start + step) % num_points]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == len(self._members):
                    return

    def _position(self, key: int) -> int:
        payload = (key & _KEY_MASK).to_bytes(_KEY_BYTES, "little")
        return xxhash.xxh3_64_intdigest(payload, seed=self.seed)

    def _add_all(self, worker_ids: Iterable[str]) -> None:
        """Places the points of every new worker in `worker_ids` with one merge."""
        new_pairs: list[tuple[int, str]] = []
        for worker_id in worker_ids:
            if worker_id in self._members:
                continue
            self._members.add(worker_id)
            new_pairs.extend(
                (
                    xxhash.xxh3_64_intdigest(f"{worker_id}\x00{index}".encode(), seed=self.seed),
                    worker_id,
                )
                for index in range(self.vnodes_per_worker)
            )
        if not new_pairs:
            return
        # One sort of (point, owner) pairs, not one list insert per point: adding 1,024 workers
        # at once stays O(n log n). Owners break point collisions, so order never matters.
        pairs = sorted([*zip(self._points, self._owners, strict=True), *new_pairs])
        self._points = [point for point, _ in pairs]
        self._owners = [owner for _, owner in pairs]

    def _remove_all(self, worker_ids: set[str]) -> None:
        """Takes the points of every member in `worker_ids` off in one pass."""
        gone = worker_ids & self._members
        if not gone:
            return
        self._members -= gone
        kept = [i for i, owner in enumerate(self._owners) if owner not in gone]
        self._points = [self._points[i] for i in kept]
        self._owners = [self._owners[i] for i in kept]

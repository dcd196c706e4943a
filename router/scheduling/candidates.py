"""One pick's candidates: the endpoints in order, and their numbers as numpy columns.

Scorers that have a column form (`ColumnScorer`) read whole columns and return one,
so a pick costs a few numpy calls rather than a Python loop per candidate per plugin:
at 1,024 workers the loops were most of a decision (docs/benchmarks.md, "Decision
time"). Columns are built on first use from the endpoints, once per `Candidates`,
or kept by their owner (`KeptCandidates`: the router writes the rows of the workers
whose load changed, at the next pick), so a pick reads columns that are already there.

Prefix indexes number workers with slots (`worker_masks.WorkerSlots`): `positions`
gives each candidate's slot in one index, so a walk that finds the few holders of a
prompt's first block turns into a column by one numpy gather, not a lookup per
candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import overload

import numpy as np
import numpy.typing as npt

from triskel.router.scheduling.producers.worker_masks import WorkerSlots
from triskel.router.scheduling.types import Endpoint, ScoredEndpoint

FloatColumn = npt.NDArray[np.float64]
IntColumn = npt.NDArray[np.int64]


class Column(StrEnum):
    """The numbers of an `Endpoint` a column scorer may read."""

    WAITING = "waiting"
    RUNNING = "running"
    KV_USAGE = "kv-usage"
    TOKENS_IN_FLIGHT = "tokens-in-flight"
    ACTIVE_REQUESTS = "active-requests"
    ACTIVE_PREFILL_TOKENS = "active-prefill-tokens"
    ACTIVE_DECODE_BLOCKS = "active-decode-blocks"
    UNREPORTED_REQUESTS = "unreported-requests"
    # The unreported requests' KV blocks as a share of the worker's KV cache (kv-usage's unit).
    UNREPORTED_KV_USAGE = "unreported-kv-usage"


_READERS: dict[Column, Callable[[Endpoint], float]] = {
    Column.WAITING: lambda e: e.load.num_waiting_requests,
    Column.RUNNING: lambda e: e.load.num_running_requests,
    Column.KV_USAGE: lambda e: e.load.kv_usage,
    Column.TOKENS_IN_FLIGHT: lambda e: e.load.num_tokens_in_flight,
    Column.ACTIVE_REQUESTS: lambda e: e.active.num_requests,
    Column.ACTIVE_PREFILL_TOKENS: lambda e: e.active.num_prefill_tokens,
    Column.ACTIVE_DECODE_BLOCKS: lambda e: e.active.num_decode_blocks,
    Column.UNREPORTED_REQUESTS: lambda e: e.active.num_unreported_requests,
    Column.UNREPORTED_KV_USAGE: lambda e: (
        e.active.num_unreported_blocks / e.load.num_kv_blocks if e.load.num_kv_blocks else 0.0
    ),
}


class Candidates(Sequence[Endpoint]):
    """The endpoints of one pick (a read-only sequence) with columns built on demand.

    The workers (ids, order) never change; their numbers may, between picks only, when
    a `KeptCandidates` owns them (its rows are replaced in place, columns included).
    Otherwise columns are computed once from the endpoints.
    """

    __slots__ = ("_columns", "_endpoints", "_positions", "_row_of", "_worker_ids")

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        kept_columns: Mapping[Column, FloatColumn] | None = None,
    ) -> None:
        # Kept: the owner's own list and arrays (read through read-only views), so each
        # pick sees them as they are now; else a copy, computed from as asked.
        self._endpoints = endpoints if kept_columns is not None else tuple(endpoints)
        self._columns: dict[Column, FloatColumn] = {
            column: _read_only(values) for column, values in (kept_columns or {}).items()
        }
        self._worker_ids: tuple[str, ...] | None = None
        self._row_of: dict[str, int] | None = None
        # Per index's WorkerSlots (by identity): (its generation, each row's slot, the
        # rows' mask).
        self._positions: dict[int, tuple[int, IntColumn, int]] = {}

    @staticmethod
    def of(endpoints: Sequence[Endpoint]) -> Candidates:
        """`endpoints` as Candidates (itself when it is one already)."""
        return endpoints if isinstance(endpoints, Candidates) else Candidates(endpoints)

    def __len__(self) -> int:
        return len(self._endpoints)

    @overload
    def __getitem__(self, index: int) -> Endpoint: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Endpoint]: ...

    def __getitem__(self, index: int | slice) -> Endpoint | Sequence[Endpoint]:
        return self._endpoints[index]

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._endpoints)

    @property
    def endpoints(self) -> Sequence[Endpoint]:
        return self._endpoints

    @property
    def worker_ids(self) -> tuple[str, ...]:
        if self._worker_ids is None:
            self._worker_ids = tuple(e.worker_id for e in self._endpoints)
        return self._worker_ids

    def row_of(self, worker_id: str) -> int | None:
        """The row of `worker_id` (None when it is not a candidate)."""
        if self._row_of is None:
            self._row_of = {w: row for row, w in enumerate(self.worker_ids)}
        return self._row_of.get(worker_id)

    def column(self, column: Column) -> FloatColumn:
        """One number per candidate, in order (float64; counts are exact up to 2**53)."""
        values = self._columns.get(column)
        if values is None:
            read = _READERS[column]
            values = _read_only(
                np.fromiter((read(e) for e in self._endpoints), np.float64, len(self._endpoints))
            )
            self._columns[column] = values
        return values

    def positions(self, slots: WorkerSlots) -> IntColumn:
        """Each candidate's slot in `slots`, −1 for a worker it has none for (derived once,
        then patched as workers take or free slots: `WorkerSlots.changes_since`)."""
        return self._slotted(slots)[0]

    def mask(self, slots: WorkerSlots) -> int:
        """The candidates' bitmask in `slots` (1 << slot each; those without a slot hold
        nothing there)."""
        return self._slotted(slots)[1]

    def _slotted(self, slots: WorkerSlots) -> tuple[IntColumn, int]:
        cached = self._positions.get(id(slots))
        generation = slots.generation
        if cached is not None:
            if cached[0] == generation:
                return cached[1], cached[2]
            changes = slots.changes_since(cached[0])
            if changes is not None:  # a few workers joined or left: patch those rows
                positions, mask = self._patched(cached[1], cached[2], changes)
                self._positions[id(slots)] = (generation, positions, mask)
                return positions, mask
        slot_of = slots.slot_of
        positions = np.fromiter(
            (slot_of.get(w, -1) for w in self.worker_ids), np.int64, len(self._endpoints)
        )
        positions.flags.writeable = False
        mask = mask_of(positions, slots.num_slots)
        self._positions[id(slots)] = (generation, positions, mask)
        return positions, mask

    def _patched(
        self, positions: IntColumn, mask: int, changes: Sequence[tuple[str, int]]
    ) -> tuple[IntColumn, int]:
        patched = positions.copy()
        for worker_id, slot in changes:
            row = self.row_of(worker_id)
            if row is None:
                continue
            old = int(patched[row])
            if old >= 0:
                mask &= ~(1 << old)
            patched[row] = slot
            if slot >= 0:
                mask |= 1 << slot
        patched.flags.writeable = False
        return patched, mask


class KeptCandidates:
    """Candidates whose numbers are kept current by their owner (the router's view of
    its workers): `replace` writes one worker's new endpoint into its row and columns,
    so a pick reads columns that are already built instead of building them from every
    endpoint. The workers themselves are fixed: when they change, build a new one.
    """

    __slots__ = ("_columns", "_endpoints", "_row_of", "candidates")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self._endpoints = list(endpoints)
        self._row_of = {e.worker_id: row for row, e in enumerate(self._endpoints)}
        size = len(self._endpoints)
        self._columns = {
            column: np.fromiter((read(e) for e in self._endpoints), np.float64, size)
            for column, read in _READERS.items()
        }
        self.candidates = Candidates(self._endpoints, self._columns)

    def replace(self, endpoint: Endpoint) -> None:
        """The worker's numbers changed: its row now reads `endpoint` (unknown: ignored)."""
        row = self._row_of.get(endpoint.worker_id)
        if row is None:
            return
        self._endpoints[row] = endpoint
        for column, read in _READERS.items():
            self._columns[column][row] = read(endpoint)


def _read_only(values: FloatColumn) -> FloatColumn:
    """A view that plugins cannot write through (the arrays are shared by a pick's plugins,
    and a kept one by every pick)."""
    view = values.view()
    view.flags.writeable = False
    return view


def gather(values_by_slot: IntColumn, positions: IntColumn) -> FloatColumn:
    """Per candidate, the value of its slot (`values_by_slot` ends with a spare 0, which
    a candidate without a slot, position −1, reads): one numpy gather, not a lookup
    per candidate."""
    return values_by_slot[positions].astype(np.float64)


def mask_of(positions: IntColumn, num_slots: int) -> int:
    """The bitmask (1 << slot per candidate with a slot) of `positions` (numpy packs the
    bits: one big-int per candidate would cost an allocation each)."""
    bits = np.zeros(max(num_slots, 1), dtype=np.bool_)
    bits[positions[positions >= 0]] = True
    return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")


class ScoredCandidates(Sequence[ScoredEndpoint]):
    """Candidates beside their weighted totals, as `ScoredEndpoint`s built on demand
    (a decision keeps them, and almost nobody reads them: a hold's runner-up)."""

    __slots__ = ("_candidates", "_totals")

    def __init__(self, candidates: Candidates, totals: FloatColumn) -> None:
        self._candidates = candidates
        self._totals = totals

    def __len__(self) -> int:
        return len(self._candidates)

    @overload
    def __getitem__(self, index: int) -> ScoredEndpoint: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ScoredEndpoint]: ...

    def __getitem__(self, index: int | slice) -> ScoredEndpoint | Sequence[ScoredEndpoint]:
        if isinstance(index, slice):
            return list(self)[index]
        return ScoredEndpoint(self._candidates[index], float(self._totals[index]))

    def __iter__(self) -> Iterator[ScoredEndpoint]:
        return map(ScoredEndpoint, self._candidates, self._totals.tolist())

    @property
    def totals(self) -> FloatColumn:
        return self._totals

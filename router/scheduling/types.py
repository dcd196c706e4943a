"""What scheduling sees: candidate endpoints, the request, per-cycle scratch state.

All plain data, no I/O: the router fills these from live state, the simulator
from its virtual cluster, and both run the same plugins over them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from triskel.common.hashing import BlockHash
from triskel.common.profiles import LatencyProfile

T = TypeVar("T")


class Stage(StrEnum):
    """Which step of the request a pick is for; each stage has its own profile."""

    ENCODE = "encode"
    PREFILL = "prefill"
    DECODE = "decode"
    UNIFIED = "unified"


# How often each worker reports its load to the router (the simulator models the same
# lag: `simulator/instance.py`).
LOAD_REPORT_INTERVAL_MS = 50


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """The worker's own last load report (up to `LOAD_REPORT_INTERVAL_MS` old)."""

    num_waiting_requests: int = 0
    num_running_requests: int = 0
    kv_usage: float = 0.0
    num_tokens_in_flight: int = 0
    num_kv_blocks: int = 0


@dataclass(frozen=True, slots=True)
class ActiveLoad:
    """What this router has sent to the worker and not seen finish (always current).

    `num_prefill_tokens`: uncached prompt tokens of requests still prefilling;
    `num_decode_blocks`: KV blocks of requests decoding (Dynamo's "active blocks").
    """

    num_requests: int = 0
    num_prefill_tokens: int = 0
    num_decode_blocks: int = 0
    # Sent by this router since the worker's last load report, finished or not: what
    # that report cannot count yet (requests, and the KV blocks they take there).
    num_unreported_requests: int = 0
    num_unreported_blocks: int = 0


def blocks_sent(num_prefill_tokens: int, num_decode_blocks: int, block_size_tokens: int) -> int:
    """The KV blocks a request just sent takes on its worker: its uncached prompt's (a
    prefill), or the blocks a decode pulls. The router and the simulator both count
    `num_unreported_blocks` with it."""
    return num_decode_blocks + -(-num_prefill_tokens // block_size_tokens)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A candidate worker."""

    worker_id: str
    model: str
    block_size_tokens: int
    load: WorkerLoad = field(default_factory=WorkerLoad)
    active: ActiveLoad = field(default_factory=ActiveLoad)
    # The worker's latency profile when known (mock engines report theirs).
    profile: LatencyProfile | None = None


@dataclass(frozen=True, slots=True)
class SchedulingRequest:
    """One pick's input. `block_hashes` are the prompt's full-block hashes, computed once."""

    request_id: str
    model: str
    stage: Stage
    token_ids: Sequence[int]
    block_hashes: Sequence[BlockHash]
    max_tokens: int
    headers: Mapping[str, str] = field(default_factory=dict)
    ttft_slo_ms: float | None = None
    tpot_slo_ms: float | None = None
    # Leading blocks each worker was recently sent by ANY router replica (shared prefix
    # history, fetched before scheduling); empty when routers do not share state.
    shared_prefix_matches: Mapping[str, int] = field(default_factory=dict)
    # Every worker that serves this stage, healthy or not, as all router replicas agree
    # (hash rings are built over it, so a health blip or a retry does not move arcs);
    # empty: the candidates are the members.
    ring_members: Collection[str] = ()

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.token_ids)


class CycleState:
    """Scratch space for one scheduling cycle, so plugins share work (e.g. prefix matches)."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """The value under `key`, computing and storing it on first use."""
        if key not in self._values:
            self._values[key] = compute()
        value: T = self._values[key]
        return value

    def get(self, key: str) -> Any:
        """The value stored under `key` by `memo`, or None."""
        return self._values.get(key)

    def memo_for(self, key: str, owner: object, compute: Callable[[], T]) -> T:
        """The value under `key` if it was computed for this very `owner` (by identity:
        e.g. the candidates a column is aligned with), else computes and stores it."""
        stored = self._values.get(key)
        if stored is not None and stored[0] is owner:
            found: T = stored[1]
            return found
        value = compute()
        self._values[key] = (owner, value)
        return value


class ScoredEndpoint(NamedTuple):
    """A candidate and its weighted total (a tuple: one is built per candidate per pick)."""

    endpoint: Endpoint
    score: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one pick."""

    endpoint: Endpoint
    profile: str
    # A short label for metrics, e.g. "max-score" or "dualmap:ttft-fallback".
    reason: str
    # Seconds spent in each plugin, by plugin name.
    plugin_seconds: Mapping[str, float]
    # What the picker chose from: the filtered candidates with their weighted totals
    # (0 without scorers); a prefill's runner-up is taken from them.
    scored: Sequence[ScoredEndpoint] = ()

    @property
    def scores(self) -> dict[str, float]:
        """Weighted total per worker id (built on demand: the hot path never needs it)."""
        return {s.endpoint.worker_id: s.score for s in self.scored}


class NoEndpointError(Exception):
    """No candidate survived the filters (the message names the filter and stage)."""

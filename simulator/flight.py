"""One request's progress through the simulated cluster, and its record when done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.latency_watch import LatencyWatch
from triskel.router.scheduling.types import SchedulingRequest
from triskel.router.scheduling.walk import Walk
from triskel.simulator.instance import SimInstance
from triskel.simulator.records import RequestRecord
from triskel.traces.types import TraceRequest


@dataclass(slots=True, eq=False)
class Flight:
    """What the simulator tracks for one request between its arrival and its last token.

    `prompt_token_ids` is dropped once no instance will be sent the prompt again
    (a 12k-token list per finished request would dominate memory on big traces).
    """

    request: TraceRequest
    # Where the request sits in the trace (its record's slot).
    position: int
    arrival_s: float
    prompt_token_ids: Sequence[int]
    block_hashes: list[BlockHash]
    prefill: SimInstance | None = None
    decode: SimInstance | None = None
    # The ActiveLoad each instance was charged for this request (removed when done).
    charges: list[tuple[SimInstance, int, int]] = field(default_factory=list)
    first_token_id: int | None = None
    first_token_s: float | None = None
    finish_s: float | None = None
    num_cached_tokens: int = 0
    kv_bytes_moved: int = 0
    # The request's walk so far, and adaptive's watch on the choice it made.
    walk: Walk | None = None
    watch: LatencyWatch | None = None
    # The prefill pick's runner-up: where a held prefill may move (routing.prefillHold).
    second_prefill: SimInstance | None = None
    # What the scheduler was asked per pick, until the instance is sent the request.
    asked_prefill: SchedulingRequest | None = None
    asked_decode: SchedulingRequest | None = None

    @property
    def request_id(self) -> str:
        return f"r{self.request.index}"

    def charge(
        self, instance: SimInstance, num_prefill_tokens: int, num_decode_blocks: int
    ) -> None:
        """Counts this request as in flight on `instance` (as the router's ClusterView does)."""
        instance.add_active(1, num_prefill_tokens, num_decode_blocks)
        self.charges.append((instance, num_prefill_tokens, num_decode_blocks))

    def discharge(self, instance: SimInstance) -> None:
        """Stops counting this request on `instance`."""
        for position, (charged, num_tokens, num_blocks) in enumerate(self.charges):
            if charged is instance:
                instance.add_active(-1, -num_tokens, -num_blocks)
                del self.charges[position]
                return

    def close(self, finish_s: float | None) -> RequestRecord:
        """Ends the request (None: it failed), uncounts it everywhere, and records it."""
        self.finish_s = finish_s
        for instance, num_tokens, num_blocks in self.charges:
            instance.add_active(-1, -num_tokens, -num_blocks)
        self.charges.clear()
        self.prompt_token_ids = []
        self.block_hashes = []
        return self.record()

    def record(self) -> RequestRecord:
        return RequestRecord(
            index=self.request.index,
            arrival_s=self.arrival_s,
            num_input_tokens=self.request.num_input_tokens,
            num_output_tokens=self.request.num_output_tokens,
            first_token_s=self.first_token_s,
            finish_s=self.finish_s,
            num_cached_tokens=self.num_cached_tokens,
            prefill_worker=None if self.prefill is None else self.prefill.worker_id,
            decode_worker=None if self.decode is None else self.decode.worker_id,
            kv_bytes_moved=self.kv_bytes_moved,
        )

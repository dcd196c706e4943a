"""One simulated worker: the mock engine's own core, stepped on the virtual clock.

The instance does what the mock worker's engine loop does, minus the sleeping:
run a step when idle and there is work, and hold its outputs until the step's
modelled duration has passed. The worker publishes its KV events before it
sleeps; here they would reach the router's index at once and in order, so the
index reads the engine's cache instead (`triskel.simulator.cache_view`) and the
events are dropped.

It also keeps what the router's ClusterView keeps per worker: the work sent to
it and not yet finished (`ActiveLoad`), so the scheduler gets the same
`Endpoint` it would get live.
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.api import Role
from triskel.router.scheduling.types import ActiveLoad, Endpoint, WorkerLoad
from triskel.workers.engine.core import EngineCore, EngineRequest, KvLoad, RequestOutput


@dataclass(slots=True)  # not frozen: one is built per step, and frozen ones build slower
class StartedStep:
    """A step now running: when it ends, and the remote KV pulls it started."""

    duration_s: float
    kv_loads: list[KvLoad]


class SimInstance:
    """A worker of one role. Not thread-safe; the event loop is its only caller."""

    __slots__ = (
        "_active",
        "_endpoint",
        "_outputs",
        "_running",
        "busy_s",
        "core",
        "role",
        "worker_id",
    )

    def __init__(self, worker_id: str, role: Role, core: EngineCore) -> None:
        self.worker_id = worker_id
        self.role = role
        self.core = core
        self.busy_s = 0.0
        self._running: StartedStep | None = None
        self._outputs: list[RequestOutput] = []
        # (requests, uncached prefill tokens, decode blocks) sent here and not finished.
        self._active = (0, 0, 0)
        # The endpoint only changes when the engine or the active load does: rebuilding
        # it (engine stats walk the running batch) at every pick would dominate big runs.
        self._endpoint: Endpoint | None = None

    @property
    def is_busy(self) -> bool:
        return self._running is not None

    def is_idle(self) -> bool:
        """Nothing running, queued, held for a decode's pull or counted in flight."""
        core = self.core
        return (
            self._running is None
            and self._active[0] == 0
            and not core.has_unfinished_work()
            and core.stats().num_kv_holds == 0
        )

    # -- work ---------------------------------------------------------------------

    def add(self, request: EngineRequest) -> None:
        """Queues `request` on the engine (ValueError when the engine refuses it)."""
        self.core.add_request(request)
        self._endpoint = None

    def start_step(self) -> StartedStep | None:
        """Runs the engine's next step if idle and it has work; None otherwise."""
        core = self.core
        if self._running is not None or not core.has_unfinished_work():
            return None
        result = core.step()
        core.drain_kv_events()
        started = StartedStep(result.duration_ms / 1000, core.take_kv_loads())
        self._running = started
        self._outputs = result.outputs
        self._endpoint = None
        return started

    def finish_step(self) -> list[RequestOutput]:
        """Ends the running step: its outputs are delivered now."""
        if self._running is None:
            raise ValueError(f"instance {self.worker_id}: no step is running")
        self.busy_s += self._running.duration_s
        outputs, self._outputs = self._outputs, []
        self._running = None
        return outputs

    def finish_kv_load(self, request_id: str) -> None:
        """The pulled KV of `request_id` has arrived: it may decode."""
        self.core.finish_kv_load(request_id, ok=True)
        self.core.drain_kv_events()
        self._endpoint = None

    def release_kv(self, request_id: str) -> None:
        """Frees a held prefill (its decode instance has pulled the KV)."""
        self.core.release_kv(request_id)
        self.core.drain_kv_events()
        self._endpoint = None

    # -- the router's view --------------------------------------------------------------

    def add_active(
        self, num_requests: int, num_prefill_tokens: int, num_decode_blocks: int
    ) -> None:
        """Adds (or, negative, removes) work the router counts as in flight here."""
        requests, prefill, decode = self._active
        self._active = (
            requests + num_requests,
            prefill + num_prefill_tokens,
            decode + num_decode_blocks,
        )
        self._endpoint = None

    def endpoint(self) -> Endpoint:
        """What the scheduler sees: the engine's current load and the router's counts."""
        if self._endpoint is None:
            stats = self.core.stats()
            config = self.core.config
            self._endpoint = Endpoint(
                worker_id=self.worker_id,
                model=config.model,
                block_size_tokens=config.block_size_tokens,
                load=WorkerLoad(
                    num_waiting_requests=stats.num_waiting_requests,
                    num_running_requests=stats.num_running_requests,
                    kv_usage=stats.kv_usage,
                    num_tokens_in_flight=stats.num_tokens_in_flight,
                    num_kv_blocks=stats.num_kv_blocks,
                ),
                active=ActiveLoad(*self._active),
                profile=config.profile,
            )
        return self._endpoint

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

Live, a worker reports its load every `LOAD_REPORT_INTERVAL_MS` and a pick reads the
last report; with `report_load` the instance does the same on the virtual clock (each
at its own phase, as live workers' timers are), and counts what was sent since the
report as the router does. The report is taken lazily but exactly: the engine only
changes in this class's methods, so the state at a report's time is the state just
before the first change after it, and no event per report is needed.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Protocol

from triskel.common.api import Role
from triskel.router.scheduling.types import ActiveLoad, Endpoint, WorkerLoad, blocks_sent
from triskel.workers.engine.core import EngineCore, EngineRequest, KvLoad, RequestOutput


def report_phase_s(worker_id: str, interval_s: float) -> float:
    """When in each interval the instance reports: its own, fixed by its id (runs repeat)."""
    return interval_s * (zlib.crc32(worker_id.encode()) % 1000) / 1000


class Clock(Protocol):
    """The virtual clock (the event queue's)."""

    @property
    def now_s(self) -> float: ...


@dataclass(slots=True)  # not frozen: one is built per step, and frozen ones build slower
class StartedStep:
    """A step now running: when it ends, and the remote KV pulls it started."""

    duration_s: float
    kv_loads: list[KvLoad]


class SimInstance:
    """A worker of one role. Not thread-safe; the event loop is its only caller."""

    __slots__ = (
        "_active",
        "_clock",
        "_endpoint",
        "_interval_s",
        "_outputs",
        "_phase_s",
        "_report",
        "_report_number",
        "_running",
        "_unreported",
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
        # Load reports (`report_load`); without a clock the router reads the engine now.
        self._clock: Clock | None = None
        self._interval_s = 0.0
        self._phase_s = 0.0
        self._report: WorkerLoad | None = None
        self._report_number = -1
        # (requests, KV blocks) sent since the last report.
        self._unreported = (0, 0)

    def report_load(self, interval_s: float, clock: Clock) -> None:
        """From now on, picks read the load the instance last reported, every `interval_s`
        of `clock`'s time, at a phase of its own (fixed by its id: runs repeat)."""
        if interval_s <= 0:
            raise ValueError(f"interval_s: must be > 0, got {interval_s}")
        self._clock = clock
        self._interval_s = interval_s
        self._phase_s = report_phase_s(self.worker_id, interval_s)
        # Its first report now, as a router hears one when it connects to a worker.
        self._report_number = self._number_at(clock.now_s)
        self._report = self._engine_load()
        self._unreported = (0, 0)
        self._endpoint = None

    def _number_at(self, now_s: float) -> int:
        return math.floor((now_s - self._phase_s) / self._interval_s)

    def _catch_up(self) -> None:
        """Takes the report due since the last change, if any: called before every change
        (and at a read), so the state it reads is the one that held at the report's time."""
        clock = self._clock
        if clock is None:
            return
        number = self._number_at(clock.now_s)
        if number > self._report_number:
            self._report_number = number
            self._report = self._engine_load()
            self._unreported = (0, 0)
            self._endpoint = None

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
        self._catch_up()
        self.core.add_request(request)
        self._endpoint = None

    def start_step(self) -> StartedStep | None:
        """Runs the engine's next step if idle and it has work; None otherwise."""
        core = self.core
        if self._running is not None or not core.has_unfinished_work():
            return None
        self._catch_up()
        result = core.step()
        core.drain_kv_events()
        started = StartedStep(result.duration_ms / 1000, core.take_kv_loads())
        self._running = started
        self._outputs = result.outputs
        self._endpoint = None
        return started

    def finish_step(self) -> list[RequestOutput]:
        """Ends the running step: its outputs are delivered now."""
        self._catch_up()
        if self._running is None:
            raise ValueError(f"instance {self.worker_id}: no step is running")
        self.busy_s += self._running.duration_s
        outputs, self._outputs = self._outputs, []
        self._running = None
        return outputs

    def finish_kv_load(self, request_id: str) -> None:
        """The pulled KV of `request_id` has arrived: it may decode."""
        self._catch_up()
        self.core.finish_kv_load(request_id, ok=True)
        self.core.drain_kv_events()
        self._endpoint = None

    def release_kv(self, request_id: str) -> None:
        """Frees a held prefill (its decode instance has pulled the KV)."""
        self._catch_up()
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
        if num_requests > 0 and self._clock is not None:
            self._catch_up()
            block_size = self.core.config.block_size_tokens
            sent, blocks = self._unreported
            self._unreported = (
                sent + num_requests,
                blocks + blocks_sent(num_prefill_tokens, num_decode_blocks, block_size),
            )
        self._endpoint = None

    def endpoint(self) -> Endpoint:
        """What the scheduler sees: the engine's load (its last report with `report_load`,
        else as it is now) and the router's counts."""
        self._catch_up()
        if self._endpoint is None:
            config = self.core.config
            report = self._report
            self._endpoint = Endpoint(
                worker_id=self.worker_id,
                model=config.model,
                block_size_tokens=config.block_size_tokens,
                load=report if report is not None else self._engine_load(),
                active=ActiveLoad(*self._active, *self._unreported),
                profile=config.profile,
            )
        return self._endpoint

    def _engine_load(self) -> WorkerLoad:
        stats = self.core.stats()
        return WorkerLoad(
            num_waiting_requests=stats.num_waiting_requests,
            num_running_requests=stats.num_running_requests,
            kv_usage=stats.kv_usage,
            num_tokens_in_flight=stats.num_tokens_in_flight,
            num_kv_blocks=stats.num_kv_blocks,
        )

"""A unified worker that freezes or stalls mid-request: before its first token the request
is retried on another worker; after it, the stream ends with an error naming the step.
The whole router path (orchestrator, flows, worker calls, cluster view) runs over
scripted in-memory workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import pytest

from triskel.common.api import Role
from triskel.common.routing_api import RoutingSettings, TimeoutsSpec, round_robin_config
from triskel.router.admission import AdmissionController
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.cluster import ClusterView
from triskel.router.dispatcher import Dispatcher
from triskel.router.metrics import RouterMetrics
from triskel.router.orchestrator import Orchestrator
from triskel.router.registry import WorkerRegistry
from triskel.router.routing_table import ModelRouting, RoutingTable
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.types import WorkerLoad
from triskel.router.state.kv_direct import KvEventCall
from triskel.router.state.memory import MemoryState
from triskel.router.types import FinishEvent, GenerationRequest, ServiceError, TokenEvent
from triskel.router.worker_calls import WorkerCalls
from triskel.router.worker_client import DecodeCall, DecodeEvent, DecodeFinished

from support.fake_workers import fake_worker

# The shortest bound the configuration accepts, for the one each test is about.
SILENCE = TimeoutsSpec(worker_silence_s=1)
IDLE = TimeoutsSpec(token_idle_s=1)


@dataclass
class Script:
    """What a scripted worker does in Decode: `first_token_delay_s` before its first token,
    then `num_tokens` tokens, freezing (or, without `stops_reporting`, stalling) for good
    after `freeze_after` of them (None: never)."""

    num_tokens: int = 3
    first_token_delay_s: float = 0.0
    freeze_after: int | None = None
    stops_reporting: bool = True


class ScriptedWorker(GrpcWorkerClient):
    def __init__(self, worker_id: str, script: Script) -> None:
        fake = fake_worker(worker_id, Role.UNIFIED)
        super().__init__(fake.address)
        self._identity = fake.identity
        self.script = script
        self.reporting = asyncio.Event()
        self.reporting.set()
        self.num_decodes = 0

    async def watch_load(self, interval_ms: int) -> AsyncIterator[WorkerLoad]:
        while True:
            await self.reporting.wait()
            yield WorkerLoad()
            await asyncio.sleep(interval_ms / 1000)

    async def decode(self, call: DecodeCall, timeout_s: float) -> AsyncGenerator[DecodeEvent, None]:
        self.num_decodes += 1
        script = self.script
        if script.freeze_after == 0:
            await self._freeze()
        await asyncio.sleep(script.first_token_delay_s)
        for i in range(script.num_tokens):
            yield TokenEvent(f" t{i}", (i + 1,))
            if script.freeze_after == i + 1:
                await self._freeze()
        yield DecodeFinished("length", script.num_tokens, 0)

    async def _freeze(self) -> None:
        if self.script.stops_reporting:
            self.reporting.clear()
        await asyncio.Event().wait()

    def kv_events(self) -> KvEventCall:
        raise NotImplementedError

    @property
    def has_kv_events(self) -> bool:
        return False


@contextlib.asynccontextmanager
async def router_on(
    timeouts: TimeoutsSpec, *workers: ScriptedWorker
) -> AsyncIterator[Orchestrator]:
    metrics = RouterMetrics()
    cluster = ClusterView(list(workers), KvBlockIndex(), MemoryState())
    scheduler = build_scheduler(round_robin_config(), default_registry(), PluginContext())
    settings = RoutingSettings(timeouts=timeouts)
    table = RoutingTable(ModelRouting(scheduler, settings, AdmissionController(8, 8)))
    calls = WorkerCalls(metrics)
    cluster.start()
    cluster.watch_silence(lambda model: settings.timeouts.worker_silence_s, calls.end_calls_to)
    try:
        yield Orchestrator(
            WorkerRegistry(list(workers)), Dispatcher(cluster, table, metrics), calls
        )
    finally:
        await cluster.close()


async def generate(router: Orchestrator) -> tuple[str, FinishEvent | ServiceError]:
    """The text streamed, and how the request ended."""
    request = GenerationRequest("r", "m", prompt="Tell me about rivers.", max_tokens=8)
    text = ""
    try:
        async with asyncio.timeout(30):  # a hang fails here, not at the suite's timeout
            async for event in router.generate(request):
                if isinstance(event, TokenEvent):
                    text += event.text
                elif isinstance(event, FinishEvent):
                    return text, event
    except ServiceError as error:
        return text, error
    raise AssertionError("the stream ended without a finish")


@pytest.mark.asyncio
async def test_a_worker_frozen_before_its_first_token_is_retried_on_another() -> None:
    frozen = ScriptedWorker("u0", Script(freeze_after=0))
    healthy = ScriptedWorker("u1", Script())
    async with router_on(SILENCE, frozen, healthy) as router:
        text, end = await generate(router)  # round-robin: u0 first
    assert isinstance(end, FinishEvent) and text == " t0 t1 t2"
    assert (frozen.num_decodes, healthy.num_decodes) == (1, 1)


@pytest.mark.asyncio
async def test_a_worker_frozen_mid_stream_ends_it_with_an_error_naming_the_step() -> None:
    frozen = ScriptedWorker("u0", Script(freeze_after=2))
    async with router_on(SILENCE, frozen, ScriptedWorker("u1", Script())) as router:
        text, end = await generate(router)
        # Tokens sent cannot be taken back: the stream ends, the client retries.
        assert text == " t0 t1"
        assert isinstance(end, ServiceError)
        assert str(end) == (
            "the unified step for model m stopped: its worker stopped responding; retry later"
        )
        # Out of rotation while silent: the next requests go to u1 alone.
        for _ in range(2):
            assert isinstance((await generate(router))[1], FinishEvent)
        assert frozen.num_decodes == 1
        # Reporting again: back in rotation.
        frozen.script = Script()
        frozen.reporting.set()
        async with asyncio.timeout(10):
            while frozen.num_decodes == 1:
                assert isinstance((await generate(router))[1], FinishEvent)


@pytest.mark.asyncio
async def test_a_stream_that_stalls_past_token_idle_s_ends_with_a_timeout() -> None:
    # The worker still reports (its engine, not its process, is stuck).
    stalled = ScriptedWorker("u0", Script(freeze_after=1, stops_reporting=False))
    async with router_on(IDLE, stalled) as router:
        text, end = await generate(router)
    assert text == " t0"
    assert isinstance(end, ServiceError)
    assert str(end) == "the unified step for model m timed out; retry later"


@pytest.mark.asyncio
async def test_the_idle_bound_waits_for_the_first_token() -> None:
    # Queued or prefilling on the worker longer than tokenIdleS: not a stall.
    slow_start = ScriptedWorker("u0", Script(first_token_delay_s=1.5))
    async with router_on(IDLE, slow_start) as router:
        text, end = await generate(router)
    assert isinstance(end, FinishEvent) and text == " t0 t1 t2"

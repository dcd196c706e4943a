"""In-memory workers that follow a script (fail, freeze or stall after N tokens), and the
whole router path (orchestrator, flows, worker calls, cluster view) over them.

A scripted worker's answer token at sequence position p (the prompt holds positions
0 … n-1) is id 1000 + p, text " w{p}": any call, on any worker, continuing any prefix,
gives the same token there, so an answer continued on another worker reads the same as
an uninterrupted one, and a token repeated or skipped at the seam shows in its text.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from triskel.common.api import Role
from triskel.common.routing_api import RoutingSettings, round_robin_config
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
from triskel.router.worker_client import (
    CallFailure,
    DecodeCall,
    DecodeEvent,
    DecodeFinished,
    KvPulled,
    KvTicket,
    PrefillCall,
    PrefillReply,
    WorkerCallError,
)

from support.fake_workers import fake_worker

FIRST_TOKEN_ID = 1000


def token_at(position: int) -> TokenEvent:
    return TokenEvent(f" w{position}", (FIRST_TOKEN_ID + position,))


def answer_text(first_position: int, num_tokens: int) -> str:
    """The text of an uninterrupted answer of `num_tokens` after a prompt of
    `first_position` tokens."""
    return "".join(token_at(p).text for p in range(first_position, first_position + num_tokens))


class Failure(StrEnum):
    # The process died: its connection resets (UNAVAILABLE at once).
    DIES = "dies"
    # SIGSTOP: no more events and no more load reports.
    FREEZES = "freezes"
    # The engine is stuck while the process still reports its load.
    STALLS = "stalls"


@dataclass
class Script:
    """What a scripted worker does in Decode: `first_token_delay_s` before its first token,
    then tokens until the call's max_tokens, failing as `failure` says after
    `fail_after` of them (None: never; 0: before the first, after a KV pull)."""

    fail_after: int | None = None
    failure: Failure = Failure.DIES
    first_token_delay_s: float = 0.0
    num_cached_tokens: int = 0
    # Prefill fails as `failure` says, before any reply.
    prefill_fails: bool = False
    # Decode fails as `failure` says once it pulled the KV, before its report of the
    # pull is sent (the handle is spent; the router cannot know).
    fails_before_pull_report: bool = False
    # What the worker's load reports say (adaptive disaggregation reads them).
    load: WorkerLoad = field(default_factory=WorkerLoad)


class ScriptedWorker(GrpcWorkerClient):
    def __init__(self, worker_id: str, script: Script | None = None, role: Role = Role.UNIFIED):
        fake = fake_worker(worker_id, role)
        super().__init__(fake.address)
        self._identity = fake.identity
        self.script = script or Script()
        self.reporting = asyncio.Event()
        self.reporting.set()
        self.decode_calls: list[DecodeCall] = []
        self.prefill_calls: list[PrefillCall] = []
        self.num_cancels = 0

    @property
    def num_decodes(self) -> int:
        return len(self.decode_calls)

    async def watch_load(self, interval_ms: int) -> AsyncIterator[WorkerLoad]:
        while True:
            await self.reporting.wait()
            yield self.script.load
            await asyncio.sleep(interval_ms / 1000)

    async def prefill(self, call: PrefillCall, timeout_s: float) -> PrefillReply:
        self.prefill_calls.append(call)
        if self.script.prefill_fails:
            await self._fail()
        kv = KvTicket("triskel", "tcp", payload=call.request_id)
        first = token_at(len(call.token_ids))
        return PrefillReply(first, self.script.num_cached_tokens, finish_reason=None, kv=kv)

    async def decode(self, call: DecodeCall, timeout_s: float) -> AsyncGenerator[DecodeEvent, None]:
        self.decode_calls.append(call)
        script = self.script
        position = len(call.token_ids)
        num_tokens = call.max_tokens
        if call.kv is not None:
            if script.fails_before_pull_report:
                await self._fail()
            yield KvPulled(num_bytes=4096, transfer_ms=1.0)
            # The prefill's first token is the answer's first.
            position, num_tokens = position + 1, num_tokens - 1
        if script.fail_after == 0:
            await self._fail()
        await asyncio.sleep(script.first_token_delay_s)
        for i in range(num_tokens):
            token = token_at(position + i)
            if i == 0:
                token = TokenEvent(token.text, token.token_ids, script.num_cached_tokens)
            yield token
            if script.fail_after == i + 1:
                await self._fail()
        yield DecodeFinished("length", num_tokens, script.num_cached_tokens)

    async def cancel(self, request_id: str) -> None:
        self.num_cancels += 1

    async def _fail(self) -> None:
        failure = self.script.failure
        if failure is Failure.DIES:
            raise WorkerCallError(CallFailure.UNAVAILABLE, "connection reset by peer")
        if failure is Failure.FREEZES:
            self.reporting.clear()
        await asyncio.Event().wait()

    def kv_events(self) -> KvEventCall:
        raise NotImplementedError

    @property
    def has_kv_events(self) -> bool:
        return False


@dataclass
class ScriptedRouter:
    orchestrator: Orchestrator
    metrics: RouterMetrics
    cluster: ClusterView
    workers: list[ScriptedWorker] = field(default_factory=list)

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def router_on(
    settings: RoutingSettings, *workers: ScriptedWorker
) -> AsyncIterator[ScriptedRouter]:
    """The router's request path over `workers`, round-robin in the order given."""
    metrics = RouterMetrics()
    cluster = ClusterView(list(workers), KvBlockIndex(), MemoryState())
    context = PluginContext()
    scheduler = build_scheduler(round_robin_config(), default_registry(), context)
    table = RoutingTable(ModelRouting(scheduler, settings, AdmissionController(8, 8)))
    calls = WorkerCalls(metrics)
    cluster.start()
    cluster.watch_silence(lambda model: settings.timeouts.worker_silence_s, calls.end_calls_to)
    try:
        orchestrator = Orchestrator(
            WorkerRegistry(list(workers)),
            Dispatcher(cluster, table, metrics, context.history),
            calls,
        )
        yield ScriptedRouter(orchestrator, metrics, cluster, list(workers))
    finally:
        await cluster.close()


@dataclass
class Answer:
    """What the client got: the text streamed, and how the request ended."""

    text: str
    end: FinishEvent | ServiceError
    num_token_events: int = 0

    @property
    def finish(self) -> FinishEvent:
        assert isinstance(self.end, FinishEvent), self.end
        return self.end


# Token ids as a client may send them: the answer's first position is len(PROMPT_IDS).
PROMPT_IDS = tuple(range(1, 21))


async def generate(
    router: ScriptedRouter,
    max_tokens: int = 8,
    stop: tuple[str, ...] = (),
    seed: int | None = None,
) -> Answer:
    request = GenerationRequest(
        "r", "m", prompt_token_ids=PROMPT_IDS, max_tokens=max_tokens, stop=stop, seed=seed
    )
    text, num_events = "", 0
    try:
        async with asyncio.timeout(30):  # a hang fails here, not at the suite's timeout
            async for event in router.orchestrator.generate(request):
                if isinstance(event, TokenEvent):
                    text += event.text
                    num_events += 1
                elif isinstance(event, FinishEvent):
                    return Answer(text, event, num_events)
    except ServiceError as error:
        return Answer(text, error, num_events)
    raise AssertionError("the stream ended without a finish")


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
    """Waits for `condition`, failing with `what` after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


async def loads_seen(router: ScriptedRouter) -> None:
    """Waits until the router's view holds every worker's scripted load report."""

    def seen() -> bool:
        loads = {e.worker_id: e.load for e in router.cluster.endpoints(router.workers)}
        return all(loads.get(w.worker_id) == w.script.load for w in router.workers)

    await until(seen, "load reports never arrived")

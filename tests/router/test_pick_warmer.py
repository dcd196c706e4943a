"""Dry picks while idle (pick_warmer.py): one per stage of the model picked last, through
a twin scheduler, so real picks, their random draws and the routing history are just
what they would have been without them; none while picks keep coming."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from triskel.common.hashing import BlockHash
from triskel.common.routing_api import RoutingConfig, RoutingSettings
from triskel.router.admission import AdmissionController
from triskel.router.cluster import ClusterView
from triskel.router.dispatcher import Dispatcher
from triskel.router.metrics import RouterMetrics
from triskel.router.pick_warmer import PickWarmer
from triskel.router.registry import WorkerRegistry
from triskel.router.routing_table import ModelRouting, RoutingTable
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.types import SchedulingRequest, Stage
from triskel.router.state.memory import MemoryState

from support.scripted_workers import ScriptedWorker, until

# Round-robin keeps a counter and the history scorer reads what was recorded: a dry
# pick through the real scheduler would move the one and could feed the other.
ROUND_ROBIN = {
    "plugins": [
        {"type": "prefix-cache-scorer", "name": "prefix"},
        {"type": "round-robin-picker"},
    ],
    "profiles": [
        {
            "name": "default",
            "plugins": [
                {"pluginRef": "prefix", "weight": 1},
                {"pluginRef": "round-robin-picker"},
            ],
        }
    ],
    "defaultProfile": "default",
}
MODEL = "m"  # the scripted workers' model
HASHES = [BlockHash(h) for h in (11, 22, 33)]


class _Router:
    """The parts a warmer works with, over four scripted workers."""

    def __init__(self, policy: dict[str, Any]) -> None:
        self.workers = [ScriptedWorker(f"w{i}") for i in range(4)]
        self.cluster = ClusterView(list(self.workers), KvBlockIndex(), MemoryState())
        self.context = PluginContext()
        self.scheduler = build_scheduler(
            RoutingConfig.model_validate(policy), default_registry(), self.context
        )
        settings = RoutingSettings.model_validate(
            {
                "plugins": policy["plugins"],
                "profiles": policy["profiles"],
                "defaultProfile": "default",
            }
        )
        self.table = RoutingTable(ModelRouting(self.scheduler, settings, AdmissionController(8, 8)))
        self.dispatcher = Dispatcher(
            self.cluster, self.table, RouterMetrics(), self.context.history
        )
        self.registry = WorkerRegistry(self.workers)

    def real_pick(self, number: int) -> str:
        """A pick as the dispatcher makes one, sent (so recorded in the history)."""
        self.dispatcher.last_model = MODEL
        request = SchedulingRequest(f"r{number}", MODEL, Stage.UNIFIED, list(range(48)), HASHES, 8)
        endpoint = self.scheduler.choose(request, self.cluster.candidates(self.workers)).endpoint
        self.scheduler.sent(request, endpoint)
        return endpoint.worker_id

    def recorded(self) -> list[int]:
        history = self.context.history.estimates()
        return [history.num_blocks(worker.worker_id) for worker in self.workers]

    async def reported(self) -> None:
        await until(lambda: len(self.cluster.endpoints(self.workers)) == 4, "no load reports")


@pytest.mark.asyncio
async def test_dry_picks_change_no_real_pick_and_record_nothing() -> None:
    plain, warmed = _Router(ROUND_ROBIN), _Router(ROUND_ROBIN)
    for router in (plain, warmed):
        router.cluster.start()
    try:
        for router in (plain, warmed):
            await router.reported()
        warmer = PickWarmer(warmed.registry, warmed.dispatcher, warmed.context, idle_s=0.005)
        warmer.warm()
        assert warmer.dry_picks == 0  # nothing picked yet: nothing to warm
        picks_plain, picks_warmed = [], []
        for number in range(6):
            picks_plain.append(plain.real_pick(number))
            picks_warmed.append(warmed.real_pick(number))
            for _ in range(3):
                warmer.warm()
        assert picks_warmed == picks_plain  # the real round-robin never saw the dry picks
        assert len(set(picks_plain)) == 4
        assert warmer.dry_picks == 18  # one stage (unified) each time
        # The real picks' prompts alone were recorded, never the dry picks' own.
        assert warmed.recorded() == plain.recorded() == [3, 3, 3, 3]
    finally:
        for router in (plain, warmed):
            await router.cluster.close()


@pytest.mark.asyncio
async def test_a_new_policy_gets_a_new_twin() -> None:
    router = _Router(ROUND_ROBIN)
    router.cluster.start()
    try:
        await router.reported()
        warmer = PickWarmer(router.registry, router.dispatcher, router.context, idle_s=0.005)
        router.real_pick(0)
        warmer.warm()
        first = warmer._twins[MODEL][1]
        warmer.warm()
        assert warmer._twins[MODEL][1] is first
        replaced = build_scheduler(
            RoutingConfig.model_validate(ROUND_ROBIN), default_registry(), router.context
        )
        routing = router.table.default
        router.table.replace(ModelRouting(replaced, routing.settings, routing.admission))
        warmer.warm()
        assert warmer._twins[MODEL][0] is replaced and warmer._twins[MODEL][1] is not first
    finally:
        await router.cluster.close()


@pytest.mark.asyncio
async def test_it_waits_for_a_pause_in_the_picks() -> None:
    router = _Router(ROUND_ROBIN)
    router.cluster.start()
    now = [100.0]
    try:
        await router.reported()
        warmer = PickWarmer(
            router.registry,
            router.dispatcher,
            router.context,
            idle_s=0.001,
            period_s=0.001,
            clock=lambda: now[0],
        )
        router.real_pick(0)
        router.dispatcher.last_pick_s = now[0]  # a pick just now
        stop = asyncio.Event()
        task = asyncio.create_task(warmer.run(stop))
        await asyncio.sleep(0.05)
        assert warmer.dry_picks == 0  # the clock stands still: no pause yet
        now[0] += 0.002
        await until(lambda: warmer.dry_picks > 0, "no dry pick after a pause")
        stop.set()
        await asyncio.wait_for(task, 1)
    finally:
        await router.cluster.close()


@pytest.mark.asyncio
async def test_a_failing_dry_pick_ends_the_warming_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = _Router(ROUND_ROBIN)
    router.cluster.start()
    try:
        await router.reported()
        warmer = PickWarmer(
            router.registry, router.dispatcher, router.context, idle_s=0.001, period_s=0.001
        )
        router.real_pick(0)
        calls = []

        def failing() -> None:
            calls.append(1)
            raise RuntimeError("a plugin's fault")

        warmer.warm = failing  # type: ignore[method-assign]
        await asyncio.wait_for(warmer.run(asyncio.Event()), 1)  # returns: no more warming
        assert len(calls) == 1 and "dry picks stopped" in caplog.text
    finally:
        await router.cluster.close()

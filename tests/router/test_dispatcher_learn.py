"""A pick a sibling process made (`Dispatcher.learn`) teaches this process's scheduler
what its own pick would have: the next request with that prefix goes to the same
worker, and workers without KV events count the prompt as sent there."""

from __future__ import annotations

import pytest

from triskel.common.hashing import BlockHash
from triskel.common.routing_api import RoutingConfig, RoutingSettings
from triskel.router.admission import AdmissionController, process_share
from triskel.router.cluster import ClusterView
from triskel.router.dispatcher import Dispatcher
from triskel.router.metrics import RouterMetrics
from triskel.router.routing_table import ModelRouting, RoutingTable
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.types import SchedulingRequest, Stage
from triskel.router.siblings import SharedPick
from triskel.router.state.memory import MemoryState

from support.scripted_workers import ScriptedWorker, until

HISTORY = RoutingConfig.model_validate(
    {
        "plugins": [
            {"type": "prefix-cache-scorer", "name": "prefix"},
            {"type": "max-score-picker"},
        ],
        "profiles": [
            {
                "name": "default",
                "plugins": [
                    {"pluginRef": "prefix", "weight": 1},
                    {"pluginRef": "max-score-picker"},
                ],
            }
        ],
        "defaultProfile": "default",
    }
)
HASHES = [BlockHash(h) for h in (11, 22, 33)]


@pytest.mark.asyncio
async def test_a_learned_pick_steers_the_next_one_and_counts_as_sent() -> None:
    workers = [ScriptedWorker(f"w{i}") for i in range(4)]
    cluster = ClusterView(list(workers), KvBlockIndex(), MemoryState())
    context = PluginContext()
    scheduler = build_scheduler(HISTORY, default_registry(), context)
    table = RoutingTable(ModelRouting(scheduler, RoutingSettings(), AdmissionController(8, 8)))
    dispatcher = Dispatcher(cluster, table, RouterMetrics(), context.history)
    cluster.start()
    try:
        await until(lambda: len(cluster.endpoints(workers)) == 4, "load reports never arrived")
        dispatcher.learn(SharedPick("r1", "m", Stage.UNIFIED, "w2", list(range(48)), HASHES, 8, {}))
        request = SchedulingRequest("r2", "m", Stage.UNIFIED, list(range(48)), HASHES, 8)
        for _ in range(5):  # every tie would be a coin toss; the learned history is not
            assert scheduler.choose(request, cluster.candidates(workers)).endpoint.worker_id == "w2"
        # ScriptedWorkers publish no KV events: what the sibling sent counts as cached.
        assert dispatcher._num_cached_blocks(HASHES, workers[2]) == 3
        assert dispatcher._num_cached_blocks(HASHES, workers[1]) == 0
        # A worker this process does not know (yet) is skipped, not an error.
        dispatcher.learn(SharedPick("r3", "m", Stage.UNIFIED, "w9", [], HASHES, 8, {}))
    finally:
        await cluster.close()


def test_a_process_share_rounds_up() -> None:
    assert [process_share(1024, n) for n in (1, 2, 3)] == [1024, 512, 342]
    assert process_share(0, 4) == 0 and process_share(1, 4) == 1

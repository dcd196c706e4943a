"""Time per scheduling decision, per plugin and per whole profile, at several cluster sizes.

Each plugin runs in a minimal profile (a scorer with `max-score-picker`, a filter
with `random-picker`, a picker alone) over N endpoints with random loads and a
precise KV index holding random cached prefixes, for 2,048-token prompts that
share a prefix with those caches. The plugin's own time comes from the
scheduler's per-plugin timing; the profile time is the whole `schedule()` call.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from triskel.common.hashing import hash_blocks
from triskel.common.profiles import load_profile
from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.candidates import Candidates
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import Filter, PluginContext, Scorer
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.types import (
    ActiveLoad,
    Endpoint,
    SchedulingRequest,
    Stage,
    WorkerLoad,
)

BLOCK_SIZE = 16
PROMPT_TOKENS = 2048
NUM_SHARED_PREFIXES = 32


@dataclass(frozen=True, slots=True)
class Timing:
    name: str
    num_workers: int
    median_us: float
    p99_us: float


def cluster(
    num_workers: int, rng: random.Random
) -> tuple[list[Endpoint], KvBlockIndex, list[list[int]]]:
    profile = load_profile("llama-3.1-8b-h100")
    endpoints = [
        Endpoint(
            worker_id=f"w{i}",
            model="m",
            block_size_tokens=BLOCK_SIZE,
            load=WorkerLoad(
                num_waiting_requests=rng.randrange(16),
                num_running_requests=rng.randrange(64),
                kv_usage=rng.random(),
                num_tokens_in_flight=rng.randrange(20_000),
                num_kv_blocks=27_000,
            ),
            active=ActiveLoad(rng.randrange(32), rng.randrange(8_000), rng.randrange(4_000)),
            profile=profile,
        )
        for i in range(num_workers)
    ]
    prefixes = [
        [rng.randrange(32_000) for _ in range(PROMPT_TOKENS)] for _ in range(NUM_SHARED_PREFIXES)
    ]
    index = KvBlockIndex()
    for endpoint in endpoints:
        chains = []
        for prefix in rng.sample(prefixes, 4):
            hashes = hash_blocks(prefix, BLOCK_SIZE, "m")
            chains.append(hashes[: rng.randrange(1, len(hashes))])
        index.apply_snapshot(endpoint.worker_id, chains, 0)
    return endpoints, index, prefixes


def requests(prefixes: list[list[int]], count: int, rng: random.Random) -> list[SchedulingRequest]:
    made = []
    for i in range(count):
        tokens = list(rng.choice(prefixes)[: PROMPT_TOKENS // 2])
        tokens += [rng.randrange(32_000) for _ in range(PROMPT_TOKENS - len(tokens))]
        made.append(
            SchedulingRequest(
                request_id=f"r{i}",
                model="m",
                stage=Stage.PREFILL,
                token_ids=tokens,
                block_hashes=hash_blocks(tokens, BLOCK_SIZE, "m"),
                max_tokens=128,
                headers={"x-session-id": f"s{i % 50}"},
                ttft_slo_ms=2000,
                tpot_slo_ms=100,
            )
        )
    return made


def single_plugin_config(type_name: str, kind: type) -> dict[str, Any]:
    plugins: list[dict[str, Any]] = [{"type": type_name}]
    refs: list[dict[str, Any]] = [{"pluginRef": type_name}]
    if kind is Scorer:
        plugins.append({"type": "max-score-picker"})
        refs.append({"pluginRef": "max-score-picker"})
    elif kind is Filter:
        plugins.append({"type": "random-picker"})
        refs.append({"pluginRef": "random-picker"})
    return {"plugins": plugins, "profiles": [{"name": "prefill", "plugins": refs}]}


def time_config(
    name: str,
    config: dict[str, Any],
    num_workers: int,
    num_requests: int,
    seed: int = 7,
    keep_candidates: bool = False,
) -> tuple[Timing, dict[str, Timing]]:
    """Whole-profile timing and per-plugin timings for one config at one cluster size.

    `keep_candidates`: every pick gets the same `Candidates` (columns and slot positions
    built once, as a router keeping them current would); else a plain list, whose
    columns each pick builds anew (the router today: `ClusterView.endpoints`)."""
    rng = random.Random(seed)
    listed, index, prefixes = cluster(num_workers, rng)
    endpoints: Sequence[Endpoint] = Candidates(listed) if keep_candidates else listed
    context = PluginContext(kv_index=index, clock=time.monotonic, rng=random.Random(seed))
    scheduler = build_scheduler(RoutingConfig.model_validate(config), default_registry(), context)
    batch = requests(prefixes, num_requests, rng)
    # One untimed decision first: rings and indexes are built once per cluster, not per pick.
    scheduler.schedule(batch[0], endpoints)
    # As the router does once started: long-lived objects leave the collector's view.
    gc.collect()
    gc.freeze()
    totals: list[float] = []
    per_plugin: dict[str, list[float]] = {}
    for request in batch:
        started = time.perf_counter()
        decision = scheduler.schedule(request, endpoints)
        totals.append(time.perf_counter() - started)
        for plugin, seconds in decision.plugin_seconds.items():
            per_plugin.setdefault(plugin, []).append(seconds)
    return _timing(name, num_workers, totals), {
        plugin: _timing(plugin, num_workers, values) for plugin, values in per_plugin.items()
    }


def _timing(name: str, num_workers: int, seconds: list[float]) -> Timing:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return Timing(name, num_workers, 1e6 * statistics.median(ordered), 1e6 * p99)


def plugin_kinds() -> dict[str, type]:
    """Each built-in plugin's type name and the kind it is benchmarked as."""
    context = PluginContext()
    kinds: dict[str, type] = {}
    for plugin_type in default_registry().types():
        plugin = plugin_type.factory(plugin_type.type_name, {}, context)
        if isinstance(plugin, Scorer):
            kinds[plugin_type.type_name] = Scorer
        elif isinstance(plugin, Filter) and not hasattr(plugin, "pick"):
            kinds[plugin_type.type_name] = Filter
        else:
            kinds[plugin_type.type_name] = object  # a picker: runs alone
    return kinds

"""The router's index read from the engines' caches, both tiers: the same answers as one
fed their events."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

import pytest

from triskel.common.hashing import BlockHash, hash_blocks
from triskel.common.kv_tiers import KvMedium
from triskel.common.profiles import load_profile
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.simulator.cache_view import (
    CachedBlocksView,
    CachedHostBlocksView,
    engine_caches_index,
)
from triskel.simulator.cluster import ClusterShape, build_cluster
from triskel.workers.engine.core import EngineConfig, EngineCore, EngineRequest
from triskel.workers.engine.events import BlocksStored

PROFILE = load_profile("llama-3.1-8b-h100")
WORKERS = ("a", "b")


def _feed(index: KvBlockIndex, worker_id: str, core: EngineCore) -> None:
    for event in core.drain_kv_events():
        if isinstance(event, BlocksStored):
            assert index.apply_stored(worker_id, event.event_id, event.block_hashes, event.medium)
        else:
            assert index.apply_removed(worker_id, event.event_id, event.block_hashes, event.medium)


def _replay(
    cores: dict[str, EngineCore], fed: KvBlockIndex, seed: int, prefix_len: int, num: int
) -> Iterator[list[list[int]]]:
    """Random prompts sharing a few prefixes, stepped a little on every engine; after each
    request `fed` has every event so far, and the prompts sent so far are yielded."""
    rng = random.Random(seed)
    prefixes = [[rng.randrange(32000) for _ in range(prefix_len)] for _ in range(4)]
    prompts: list[list[int]] = []
    for n in range(num):
        tail = [n] * rng.randrange(0, prefix_len // 2)
        prompts.append(rng.choice(prefixes)[: rng.randrange(16, prefix_len)] + tail)
        core = cores[rng.choice(WORKERS)]
        core.add_request(EngineRequest(f"r{n}", prompts[-1], max_tokens=rng.randrange(1, 30)))
        for worker_id, worker_core in cores.items():
            for _ in range(rng.randrange(0, 6)):
                if worker_core.has_unfinished_work():
                    worker_core.step()
            _feed(fed, worker_id, worker_core)
        yield rng.sample(prompts, min(5, len(prompts)))


def test_matches_an_index_fed_every_kv_event() -> None:
    # 40 blocks of 16 tokens per engine: prompts sharing prefixes keep storing, hitting
    # and evicting blocks, so the answers cover partial matches and evicted prefixes.
    config = EngineConfig.from_profile(PROFILE, kv_capacity_tokens=640)
    cores = {worker_id: EngineCore(config) for worker_id in WORKERS}
    view = KvBlockIndex(CachedBlocksView(cores))
    fed = KvBlockIndex()
    for asked_prompts in _replay(cores, fed, seed=7, prefix_len=96, num=60):
        for asked in asked_prompts:
            hashes = hash_blocks(asked, 16, PROFILE.model)
            assert view.match_lengths(hashes, [*WORKERS, "c"]) == fed.match_lengths(
                hashes, [*WORKERS, "c"]
            )
        for worker_id in (*WORKERS, "c"):
            assert view.num_blocks(worker_id) == fed.num_blocks(worker_id)


def test_is_fed_by_the_engines_only() -> None:
    index = KvBlockIndex(CachedBlocksView({}))
    with pytest.raises(TypeError, match="read, not fed events"):
        index.apply_stored("a", 1, [])
    # Unknown workers hold nothing.
    assert index.match_lengths([BlockHash(1), BlockHash(2)], ["a"]) == [0]


def test_a_clusters_index_covers_every_instance() -> None:
    cluster = build_cluster(ClusterShape(num_prefill=1, num_decode=1))
    prefill = cluster.instances[0]
    prompt = list(range(40))
    prefill.add(EngineRequest("r0", prompt, max_tokens=2, prefill_only=True))
    prefill.start_step()
    hashes = hash_blocks(prompt, 16, PROFILE.model)
    assert cluster.kv_index().match_lengths(hashes, ["prefill-0", "decode-0"]) == [2, 0]


def test_match_tiers_matches_an_index_fed_every_kv_event() -> None:
    # 40 GPU blocks and a 60-block host tier per engine: prefixes evicted from GPU memory
    # go on matching in the host tier until it drops them, or a prompt loads them back.
    config = EngineConfig.from_profile(PROFILE, kv_capacity_tokens=640)
    config = dataclasses.replace(config, num_host_kv_blocks=60)
    cores = {worker_id: EngineCore(config) for worker_id in WORKERS}
    view = engine_caches_index(cores)
    fed = KvBlockIndex()
    num_host_hits = 0
    for asked_prompts in _replay(cores, fed, seed=11, prefix_len=160, num=80):
        for asked in asked_prompts:
            hashes = hash_blocks(asked, 16, PROFILE.model)
            tiers = view.match_tiers(hashes, [*WORKERS, "c"])
            assert tiers == fed.match_tiers(hashes, [*WORKERS, "c"])
            num_host_hits += sum(1 for _, h in tiers if h)
        for worker_id in (*WORKERS, "c"):
            for medium in KvMedium:
                assert view.num_blocks(worker_id, medium) == fed.num_blocks(worker_id, medium)
    assert num_host_hits > 0  # the run did exercise the host tier


def test_the_host_view_is_read_only_and_empty_without_a_tier() -> None:
    core = EngineCore(EngineConfig.from_profile(PROFILE, kv_capacity_tokens=640))
    view = CachedHostBlocksView({"a": core})
    with pytest.raises(TypeError, match="read, not fed events"):
        view.add("a", [])
    assert view.match_lengths([BlockHash(1)], ["a", "b"]) == [0, 0]
    assert view.num_blocks("a") == 0


def test_a_clusters_index_reads_the_host_tier() -> None:
    # 40 GPU blocks per instance: two 30-block prompts after r0 evict its 2 blocks, which
    # the host tier keeps.
    shape = ClusterShape(num_unified=1, kv_capacity_tokens=640, host_kv_capacity_tokens=6400)
    cluster = build_cluster(shape)
    instance = cluster.instances[0]
    prompts = [list(range(40)), list(range(1000, 1480)), list(range(2000, 2480))]
    for n, prompt in enumerate(prompts):
        instance.core.add_request(EngineRequest(f"r{n}", prompt, max_tokens=1))
        while instance.core.has_unfinished_work():
            instance.core.step()
    hashes = hash_blocks(prompts[0], 16, PROFILE.model)
    assert cluster.kv_index().match_tiers(hashes, [instance.worker_id, "x"]) == [(0, 2), (0, 0)]

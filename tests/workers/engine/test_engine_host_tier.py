"""The engine with a host KV tier: GPU evictions offloaded, prefixes loaded back when a
load beats recomputing (its cost on the step's clock), the tier's KV events."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from triskel.common.hashing import hash_blocks
from triskel.common.kv_tiers import KvMedium, load_ms
from triskel.common.latency import step_ms
from triskel.common.profiles import HostLink, LatencyProfile
from triskel.workers.engine.core import EngineConfig, EngineCore, EngineRequest
from triskel.workers.engine.events import BlocksRemoved, BlocksStored, KvEvent

BLOCK_SIZE = 4  # the `simple_profile` fixture's
GPU_BLOCKS = 64
PROMPT_A = list(range(1000, 1041))  # 41 tokens: 10 full blocks and one token
HASHES_A = hash_blocks(PROMPT_A, BLOCK_SIZE, "test-model")


def make(profile: LatencyProfile, num_host_blocks: int) -> EngineCore:
    config = EngineConfig.from_profile(profile, model="test-model")
    return EngineCore(dataclasses.replace(config, num_host_kv_blocks=num_host_blocks))


def run(core: EngineCore, request_id: str, prompt: list[int]) -> list[float]:
    """Runs one request to its end; each step's duration."""
    core.add_request(EngineRequest(request_id, prompt, max_tokens=1, ignore_eos=True))
    durations: list[float] = []
    while core.has_unfinished_work():
        durations.append(core.step().duration_ms)
    return durations


def evict_everything(core: EngineCore) -> None:
    """Two prompts of 50 blocks each: together more than the 64 GPU blocks."""
    for index in range(2):
        run(core, f"flood-{index}", list(range(10_000 * (index + 1), 10_000 * (index + 1) + 200)))


def events_of(events: list[KvEvent], medium: KvMedium, kind: type) -> set[int]:
    return {
        block_hash
        for event in events
        if isinstance(event, kind) and event.medium is medium
        for block_hash in event.block_hashes
    }


def test_an_evicted_prefix_is_loaded_back_and_its_copy_priced(
    simple_profile: LatencyProfile,
) -> None:
    core = make(simple_profile, num_host_blocks=256)
    run(core, "a", PROMPT_A)
    evict_everything(core)
    assert core.num_cached_prefix_blocks(HASHES_A) == 0
    assert core.num_host_prefix_blocks(HASHES_A) == 10

    [duration] = run(core, "a-again", PROMPT_A)

    stats = core.stats()
    assert stats.host_hit_tokens_total == 40
    # One token left to prefill after 40 loaded ones, plus copying the 40 back: 50 GB/s
    # for 131,072 B per token = 0.0026 ms a token, against 0.5 ms to recompute one.
    assert duration == pytest.approx(
        step_ms(simple_profile, [(1, 40)], []) + load_ms(simple_profile, 40)
    )
    assert core.num_cached_prefix_blocks(HASHES_A) == 10  # back in GPU memory


def test_the_tier_reports_in_the_engines_one_event_sequence(
    simple_profile: LatencyProfile,
) -> None:
    core = make(simple_profile, num_host_blocks=12)
    run(core, "a", PROMPT_A)
    evict_everything(core)
    events = core.drain_kv_events()

    assert [event.event_id for event in events] == list(range(1, len(events) + 1))
    offloaded = events_of(events, KvMedium.HOST, BlocksStored)
    dropped = events_of(events, KvMedium.HOST, BlocksRemoved)
    assert set(HASHES_A) <= offloaded  # every evicted block went to the host tier
    # 12 host blocks: what it holds is what it stored and has not dropped.
    held = offloaded - dropped
    assert len(held) == 12
    assert {h for chain in core.cached_block_chains(KvMedium.HOST) for h in chain} == held
    # Offloaded runs are chains, head to tail, as GPU stores are.
    first_a = next(
        event
        for event in events
        if isinstance(event, BlocksStored)
        and event.medium is KvMedium.HOST
        and HASHES_A[0] in event.block_hashes
    )
    assert first_a.parent_hash is None and first_a.block_hashes[0] == HASHES_A[0]
    assert list(first_a.block_hashes) == HASHES_A[: len(first_a.block_hashes)]


def test_a_link_slower_than_recompute_recomputes(simple_profile: LatencyProfile) -> None:
    # 0.1 GB/s: 1.31 ms a token to copy, 0.5 ms to recompute it.
    slow = simple_profile.model_copy(update={"host_link": HostLink(load_gb_per_s=0.1)})
    core = make(slow, num_host_blocks=256)
    run(core, "a", PROMPT_A)
    evict_everything(core)
    assert core.num_host_prefix_blocks(HASHES_A) == 10

    run(core, "a-again", PROMPT_A)

    assert core.stats().host_hit_tokens_total == 0


def test_no_host_tier_without_a_host_link(simple_profile: LatencyProfile) -> None:
    no_link = simple_profile.model_copy(update={"host_link": None})
    config = EngineConfig.from_profile(no_link, model="test-model")
    with pytest.raises(ValueError, match="num_host_kv_blocks: profile simple has no host_link"):
        dataclasses.replace(config, num_host_kv_blocks=8)
    with pytest.raises(ValueError, match="num_host_kv_blocks: must be >= 0"):
        dataclasses.replace(config, num_host_kv_blocks=-1)


def test_a_reconfigured_engine_keeps_its_host_tier(simple_profile: LatencyProfile) -> None:
    core = make(simple_profile, num_host_blocks=16)
    with pytest.raises(ValueError, match="num_host_kv_blocks: a reconfigured engine keeps"):
        core.reconfigure(dataclasses.replace(core.config, num_host_kv_blocks=32))


def test_from_profile_sizes_the_tier_in_tokens(simple_profile: LatencyProfile) -> None:
    config = EngineConfig.from_profile(simple_profile, host_kv_capacity_tokens=1000)
    assert config.num_host_kv_blocks == 250
    assert EngineConfig.from_profile(simple_profile).num_host_kv_blocks == 0


MakeCore = Callable[..., EngineCore]


def test_without_a_tier_nothing_changes(make_core: MakeCore) -> None:
    core = make_core()
    run(core, "a", PROMPT_A)
    evict_everything(core)
    assert core.num_host_prefix_blocks(HASHES_A) == 0
    assert core.cached_block_chains(KvMedium.HOST) == []
    assert all(event.medium is KvMedium.GPU for event in core.drain_kv_events())

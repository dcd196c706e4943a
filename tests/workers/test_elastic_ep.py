"""A live EP size change: planned, run while the old layout serves, then switched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from triskel.common.api import WorkerPoolSpec
from triskel.common.profiles import load_profile
from triskel.workers.api import DecodeDone, DecodeParams, Tokens
from triskel.workers.elastic_ep import ElasticEpGroup, EpScaleError
from triskel.workers.engine.core import EngineConfig
from triskel.workers.ep_group import EpGroupSpec, ep_group_spec
from triskel.workers.mock_engine import MockEngine
from triskel.workers.process import WorkerProcessConfig, build_mock_worker

from support.waiting import wait_until

DEEPSEEK = load_profile("deepseek-v2-lite-ep-h100")
# 4 → 6 ranks: 20 experts of 450e6 B move over NVLink at 200e9 B/s (0.045 s), every
# rank reconfigures (7 s) and the new ranks start (22 s).
UP_SECONDS = 22 + 7 + 0.045
DOWN_SECONDS = 7 + 0.045  # 6 → 4: the removed ranks' 20 experts move back; none start


class FakeEngine:
    def __init__(self) -> None:
        self.configs: list[EngineConfig] = []

    def reconfigure(self, config: EngineConfig) -> None:
        self.configs.append(config)


class HeldWait:
    """A step's time passes only once the test lets it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await self.release.wait()
        self.release.clear()


def group_spec(ep: int = 4) -> EpGroupSpec:
    spec = ep_group_spec(DEEPSEEK, ep, model="m", kv_capacity_tokens_per_rank=4096)
    assert spec is not None
    return spec


def held_group(engine: FakeEngine, wait: HeldWait, ep: int = 4) -> ElasticEpGroup:
    return ElasticEpGroup(group_spec(ep), engine, ep, time_scale=0.5, wait=wait)


@pytest.mark.asyncio
async def test_the_old_capacity_serves_until_the_step_ends() -> None:
    engine, wait = FakeEngine(), HeldWait()
    group = held_group(engine, wait)
    scaling = asyncio.create_task(group.scale(6))
    await wait_until(lambda: bool(wait.seconds))
    # The step runs: the engine still has its 4-rank capacity.
    assert group.is_scaling and engine.configs == [] and group.ranks == 4
    assert group.step_in_progress is not None
    assert (group.step_in_progress.old_ranks, group.step_in_progress.new_ranks) == (4, 6)
    assert wait.seconds == [pytest.approx(UP_SECONDS * 0.5)]  # scaled by the time scale
    wait.release.set()
    step = await asyncio.wait_for(scaling, 5)
    [config] = engine.configs
    assert (config.num_ep_ranks, config.max_num_seqs, config.num_kv_blocks) == (6, 6 * 256, 6 * 256)
    assert (group.ranks, group.is_scaling, group.last_step) == (6, False, step)
    assert (step.experts_moved, step.bytes_moved) == (20, 9_000_000_000)
    assert [len(held) for held in group.layout] == [11, 11, 11, 11, 10, 10]


@pytest.mark.asyncio
async def test_up_and_down_again_restores_the_layout_and_sums_the_moves() -> None:
    engine = FakeEngine()

    async def no_wait(seconds: float) -> None:
        pass

    group = ElasticEpGroup(group_spec(), engine, 4, time_scale=1.0, wait=no_wait)
    up = await group.scale(6)
    down = await group.scale(4)
    assert up.seconds == pytest.approx(UP_SECONDS)
    assert down.seconds == pytest.approx(DOWN_SECONDS)
    # Ranks 0-3 kept their 11 each; ranks 4 and 5 hand their 20 back, 5 to each.
    assert [len(held) for held in group.layout] == [16, 16, 16, 16]
    assert sorted(expert for held in group.layout for expert in held) == list(range(64))
    assert (group.num_steps_total, group.experts_moved_total) == (2, 40)
    assert group.bytes_moved_total == 18_000_000_000
    assert [config.num_ep_ranks for config in engine.configs] == [6, 4]


@pytest.mark.asyncio
async def test_the_size_it_has_is_a_400() -> None:
    group = held_group(FakeEngine(), HeldWait())
    with pytest.raises(EpScaleError, match=r"^new_data_parallel_size: 4 is the group's EP size"):
        await group.scale(4)


@pytest.mark.parametrize(
    ("new_ranks", "message"),
    [
        # The default limit is twice the start size; the message names it and the range.
        (9, "new_data_parallel_size: 9 is above 8, the largest EP size"),
        (65, "new_data_parallel_size: 65 ranks exceed the model's 64 experts"),
    ],
)
@pytest.mark.asyncio
async def test_sizes_the_group_cannot_take_are_400s(new_ranks: int, message: str) -> None:
    group = held_group(FakeEngine(), HeldWait())
    with pytest.raises(EpScaleError) as refused:
        await group.scale(new_ranks)
    assert refused.value.status == 400 and refused.value.field_name == "new_data_parallel_size"
    assert str(refused.value).startswith(message)
    assert "valid EP sizes for deepseek-v2-lite-ep-h100: 1 to 8" in str(refused.value)
    assert not group.is_scaling


@pytest.mark.asyncio
async def test_a_second_change_while_one_runs_is_a_409() -> None:
    engine, wait = FakeEngine(), HeldWait()
    group = held_group(engine, wait)
    scaling = asyncio.create_task(group.scale(6))
    await wait_until(lambda: group.is_scaling)
    with pytest.raises(EpScaleError, match="already scaling from 4 to 6 ranks") as refused:
        await group.scale(5)
    assert refused.value.status == 409
    wait.release.set()
    await asyncio.wait_for(scaling, 5)
    next_change = asyncio.create_task(group.scale(5))  # one at a time: now it may start
    await wait_until(lambda: len(wait.seconds) == 2)
    wait.release.set()
    assert (await asyncio.wait_for(next_change, 5)).new_ranks == 5


@pytest.mark.asyncio
async def test_a_caller_that_leaves_does_not_stop_the_change() -> None:
    engine, wait = FakeEngine(), HeldWait()
    group = held_group(engine, wait)
    caller = asyncio.create_task(group.scale(6))
    await wait_until(lambda: group.is_scaling)
    caller.cancel()  # the HTTP client hung up
    await asyncio.gather(caller, return_exceptions=True)
    wait.release.set()
    await wait_until(lambda: group.ranks == 6)
    assert [config.num_ep_ranks for config in engine.configs] == [6]


@pytest.mark.asyncio
async def test_closing_abandons_a_change_before_its_switch() -> None:
    engine, wait = FakeEngine(), HeldWait()
    group = held_group(engine, wait)
    caller = asyncio.create_task(group.scale(6))
    await wait_until(lambda: group.is_scaling)
    await group.close()
    await asyncio.gather(caller, return_exceptions=True)
    assert (group.ranks, group.is_scaling, engine.configs) == (4, False, [])


# -- on the mock engine ---------------------------------------------------------------


@pytest_asyncio.fixture
async def two_rank_engine() -> AsyncIterator[tuple[MockEngine, EpGroupSpec]]:
    """DeepSeek-V2-Lite on 2 ranks of 4 KV blocks (64 tokens) each, at real speed."""
    pool = WorkerPoolSpec.model_validate(
        {
            "role": "unified",
            "model": "m",
            "parallelism": {"ep": 2},
            "profile": {"name": DEEPSEEK.name, "kvCapacityTokens": 64, "timeScale": 1},
        }
    )
    worker = build_mock_worker(WorkerProcessConfig(worker_id="ep", pool=pool))
    assert worker.elastic_ep is not None
    await worker.engine.start()
    yield worker.engine, worker.elastic_ep.spec
    await worker.engine.close()


async def stream(engine: MockEngine, request_id: str, midway: asyncio.Event) -> int:
    """Streams 56 tokens after an 8-token prompt (4 blocks); `midway` is set at 30."""
    params = DecodeParams(request_id, list(range(8)), max_tokens=56, ignore_eos=True)
    num_tokens = 0
    async for event in engine.decode(params):
        if isinstance(event, Tokens):
            num_tokens += len(event.token_ids)
            if num_tokens >= 30:
                midway.set()
        elif isinstance(event, DecodeDone):
            assert event.finish_reason == "length"
    return num_tokens


@pytest.mark.asyncio
async def test_shrinking_below_what_runs_lets_it_finish(
    two_rank_engine: tuple[MockEngine, EpGroupSpec],
) -> None:
    engine, spec = two_rank_engine
    # The switch at once (time scale 0), while the two sequences are midway.
    group = ElasticEpGroup(spec, engine, 2, time_scale=0)
    assert engine.description.num_kv_blocks == 8
    # What the router's load stream reports (StreamStats): it sees the group's capacity.
    assert engine.load().num_kv_blocks == 8
    midways = [asyncio.Event(), asyncio.Event()]
    streams = [asyncio.create_task(stream(engine, f"r{i}", midways[i])) for i in range(2)]
    await asyncio.wait_for(asyncio.gather(*(midway.wait() for midway in midways)), 10)
    # 38+ tokens each: 3 blocks each, 6 in use, more than the one rank left holds (4).
    await asyncio.wait_for(group.scale(1), 10)
    assert engine.description.num_kv_blocks == 4
    assert engine.load().num_kv_blocks == 4
    # They run on into the blocks they had, none preempted, none failed.
    assert await asyncio.wait_for(asyncio.gather(*streams), 30) == [56, 56]
    assert engine._core.stats().num_preemptions_total == 0  # the engine's own count
    load = engine.load()
    assert (load.num_running_requests, load.num_waiting_requests, load.kv_usage) == (0, 0, 0)

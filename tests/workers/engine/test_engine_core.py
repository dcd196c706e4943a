"""The engine core end to end: unified vs split P/D, holds, aborts, remote KV, stats."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pytest

from triskel.common.hashing import hash_blocks
from triskel.common.latency import decode_ms, prefill_ms
from triskel.common.profiles import LatencyProfile
from triskel.workers.engine.core import (
    EngineConfig,
    EngineCore,
    EngineRequest,
    EngineStats,
    StepResult,
)
from triskel.workers.engine.events import BlocksStored
from triskel.workers.engine.sampler import natural_length_tokens, output_token_id, prompt_seed
from triskel.workers.engine.scheduler import Scheduler

MakeCore = Callable[..., EngineCore]  # the `make_core` fixture (conftest.py)
BLOCK_SIZE = 4  # the `simple_profile` fixture's block size
PROMPT = list(range(1000, 1010))  # 10 tokens: 2 full blocks of 4 and a partial one


def run_until_idle(core: EngineCore, max_steps: int = 1000) -> list[StepResult]:
    results: list[StepResult] = []
    for _ in range(max_steps):
        if not core.has_unfinished_work():
            return results
        results.append(core.step())
    raise AssertionError(f"engine still busy after {max_steps} steps")


def tokens_by_request(results: list[StepResult]) -> dict[str, list[int]]:
    tokens: dict[str, list[int]] = {}
    for result in results:
        for output in result.outputs:
            tokens.setdefault(output.request_id, []).extend(output.new_token_ids)
    return tokens


def finish_reasons(results: list[StepResult]) -> dict[str, str]:
    return {
        output.request_id: output.finish_reason
        for result in results
        for output in result.outputs
        if output.finish_reason is not None
    }


def test_unified_equals_prefill_then_remote_decode(make_core: MakeCore) -> None:
    unified = make_core()
    unified.add_request(EngineRequest("u", PROMPT, max_tokens=30, ignore_eos=True))
    expected = tokens_by_request(run_until_idle(unified))["u"]
    model = unified.config.model
    assert expected == [output_token_id(PROMPT, index, model) for index in range(30)]

    prefill = make_core()
    prefill.add_request(EngineRequest("p", PROMPT, max_tokens=30, prefill_only=True))
    [result] = run_until_idle(prefill)
    [first] = result.outputs
    assert first.new_token_ids == expected[:1]
    assert first.is_prefill_done and first.finish_reason is None
    assert len(prefill.held_block_ids("p")) == 3  # 10 tokens, blocks of 4
    assert prefill.stats().num_kv_holds == 1

    decode = make_core()
    decode.add_request(
        EngineRequest("d", PROMPT, 30, ignore_eos=True, remote_kv=True, first_token_id=expected[0])
    )
    assert run_until_idle(decode) == [StepResult(0.0, [], 0)]  # admitted, now waits for KV
    [load] = decode.take_kv_loads()
    assert (load.request_id, len(load.block_ids), load.num_cached_blocks) == ("d", 3, 0)
    decode.finish_kv_load("d", ok=True)
    results = run_until_idle(decode)
    # The decode worker continues at index 1 and never repeats the first token.
    assert tokens_by_request(results)["d"] == expected[1:]
    assert not any(o.is_prefill_done for r in results for o in r.outputs)
    assert finish_reasons(results) == {"d": "length"}


def test_releasing_held_kv_frees_blocks_but_keeps_them_cached(make_core: MakeCore) -> None:
    core = make_core()
    core.add_request(EngineRequest("p", PROMPT, max_tokens=5, prefill_only=True))
    run_until_idle(core)
    assert core.stats().kv_usage == pytest.approx(3 / 64)
    core.release_kv("p")
    core.release_kv("p")  # a second release (e.g. after an abort race) is a no-op
    assert core.stats().kv_usage == 0.0
    assert core.stats().num_kv_holds == 0
    # The two full prompt blocks stay cached for the next request with this prefix.
    assert [len(chain) for chain in core.cached_block_chains()] == [2]
    with pytest.raises(ValueError, match="holds no prefilled KV"):
        core.held_block_ids("p")


@pytest.mark.parametrize(
    ("max_tokens", "reason"),
    [
        (1, "length"),  # the first token exhausts max_tokens
        (5, None),  # more to come: the decode worker continues
    ],
)
def test_prefill_only_produces_exactly_one_output(
    make_core: MakeCore, max_tokens: int, reason: str | None
) -> None:
    core = make_core()
    core.add_request(EngineRequest("p", PROMPT, max_tokens=max_tokens, prefill_only=True))
    results = run_until_idle(core)
    outputs = [output for result in results for output in result.outputs]
    assert len(outputs) == 1
    assert outputs[0].finish_reason == reason
    assert core.held_block_ids("p")  # held whatever the reason, until release_kv


def test_a_request_stops_at_its_natural_length(make_core: MakeCore) -> None:
    core = make_core(num_kv_blocks=512)  # room for 600 tokens twice
    natural = natural_length_tokens(prompt_seed(PROMPT, core.config.model))
    core.add_request(EngineRequest("stop", PROMPT, max_tokens=600))
    core.add_request(EngineRequest("eos", PROMPT, max_tokens=natural + 3, ignore_eos=True))
    results = run_until_idle(core)
    tokens = tokens_by_request(results)
    assert len(tokens["stop"]) == natural
    assert len(tokens["eos"]) == natural + 3  # ignore_eos runs to max_tokens
    assert finish_reasons(results) == {"stop": "stop", "eos": "length"}


def test_step_durations_follow_the_latency_model(
    make_core: MakeCore, simple_profile: LatencyProfile
) -> None:
    core = make_core()
    core.add_request(EngineRequest("r", PROMPT, max_tokens=3, ignore_eos=True))
    first, second, third = run_until_idle(core)
    assert first.duration_ms == pytest.approx(prefill_ms(simple_profile.prefill, 10))
    # Decode steps feed the newest token: contexts of 11, then 12 tokens.
    assert second.duration_ms == pytest.approx(decode_ms(simple_profile.decode, 11, 1))
    assert third.duration_ms == pytest.approx(decode_ms(simple_profile.decode, 12, 1))


def test_chunked_prefill_costs_about_one_shot(
    make_core: MakeCore, simple_profile: LatencyProfile
) -> None:
    core = make_core(max_num_batched_tokens=16)
    core.add_request(EngineRequest("long", list(range(40)), max_tokens=1))
    results = run_until_idle(core)
    assert [len(result.outputs) for result in results] == [0, 0, 1]  # chunks 16, 16, 8
    total_ms = sum(result.duration_ms for result in results)
    # Same attention as one shot; only the fixed cost is paid per step (3 instead of 1).
    one_shot = prefill_ms(simple_profile.prefill, 40)
    assert total_ms == pytest.approx(one_shot + 2 * simple_profile.prefill.a_ms)


def test_prefix_cache_hits_across_requests(make_core: MakeCore) -> None:
    core = make_core()
    core.add_request(EngineRequest("first", PROMPT, max_tokens=1))
    run_until_idle(core)
    events = core.drain_kv_events()
    assert [type(event) for event in events] == [BlocksStored]
    assert events[0].event_id == 1
    core.add_request(EngineRequest("second", [*PROMPT, 7, 7], max_tokens=1))
    [result] = run_until_idle(core)
    # 12 tokens: the 2 cached blocks hit; (12 - 1) // 4 = 2 is also the cap.
    assert result.outputs[0].num_cached_tokens == 2 * BLOCK_SIZE
    stats = core.stats()
    assert stats.prefix_query_tokens_total == 10 + 12
    assert stats.prefix_hit_tokens_total == 8


def test_preemption_keeps_the_token_streams(make_core: MakeCore) -> None:
    def run(num_kv_blocks: int) -> tuple[dict[str, list[int]], int]:
        core = make_core(num_kv_blocks=num_kv_blocks)
        for index in range(3):
            prompt = list(range(100 * index, 100 * index + 12))
            core.add_request(EngineRequest(f"r{index}", prompt, max_tokens=24, ignore_eos=True))
        results = run_until_idle(core)
        assert core.stats().kv_usage == 0.0
        return tokens_by_request(results), sum(result.num_preempted for result in results)

    roomy, roomy_preempted = run(64)
    tight, tight_preempted = run(12)  # 3 requests x 36 tokens need 27 blocks at the end
    assert roomy_preempted == 0 < tight_preempted
    assert tight == roomy


def test_abort_frees_blocks_wherever_the_request_is(make_core: MakeCore) -> None:
    core = make_core(max_num_batched_tokens=8)
    core.add_request(EngineRequest("running", PROMPT, max_tokens=50, ignore_eos=True))
    core.add_request(EngineRequest("held", list(range(50, 58)), max_tokens=5, prefill_only=True))
    core.add_request(
        EngineRequest("loading", list(range(60, 68)), 5, remote_kv=True, first_token_id=3)
    )
    core.add_request(EngineRequest("waiting", list(range(70, 78)), max_tokens=5))
    for _ in range(3):
        core.step()
    assert core.stats().num_kv_holds == 1
    assert [load.request_id for load in core.take_kv_loads()] == ["loading"]
    for request_id in ("running", "held", "loading", "waiting"):
        assert core.abort(request_id)
    assert not core.abort("running")  # already gone
    assert not core.abort("never-seen")
    stats = core.stats()
    assert stats.kv_usage == 0.0
    assert (stats.num_running_requests, stats.num_waiting_requests, stats.num_kv_holds) == (0, 0, 0)
    assert not core.has_unfinished_work()
    core.finish_kv_load("loading", ok=True)  # the pull finished after the abort: ignored


def test_failed_kv_load_reports_an_error_next_step(make_core: MakeCore) -> None:
    core = make_core()
    core.add_request(EngineRequest("d", PROMPT, 5, remote_kv=True, first_token_id=3))
    core.step()
    core.take_kv_loads()
    core.finish_kv_load("d", ok=False)
    assert core.stats().kv_usage == 0.0
    assert core.has_unfinished_work()  # the error output is still to be delivered
    [output] = core.step().outputs
    assert (output.request_id, output.finish_reason, output.new_token_ids) == ("d", "error", [])
    assert not core.has_unfinished_work()


def test_remote_kv_skips_blocks_already_cached(make_core: MakeCore) -> None:
    core = make_core()
    core.add_request(EngineRequest("local", PROMPT, max_tokens=1))
    run_until_idle(core)
    core.add_request(EngineRequest("d", PROMPT, 5, remote_kv=True, first_token_id=3))
    core.step()
    [load] = core.take_kv_loads()
    # Both full prompt blocks are cached here: only the partial third one is pulled.
    assert (load.num_cached_blocks, len(load.block_ids), load.num_prompt_tokens) == (2, 3, 10)


def test_a_blocked_engine_does_not_spin(make_core: MakeCore) -> None:
    core = make_core(num_kv_blocks=4)
    core.add_request(EngineRequest("held", list(range(12)), max_tokens=2, prefill_only=True))
    run_until_idle(core)
    core.add_request(EngineRequest("next", list(range(50, 58)), max_tokens=2))
    # 3 of 4 blocks are held; "next" needs 3: nothing can run until the hold goes.
    assert core.step() == StepResult(0.0, [], 0)
    assert not core.has_unfinished_work()
    core.release_kv("held")
    assert core.has_unfinished_work()
    assert finish_reasons(run_until_idle(core)) == {"next": "length"}


def test_stats_count_queues_and_tokens_in_flight(make_core: MakeCore) -> None:
    core = make_core(max_num_batched_tokens=12)
    core.add_request(EngineRequest("a", PROMPT, max_tokens=5))
    core.add_request(EngineRequest("b", list(range(20, 30)), max_tokens=7))
    stats = core.stats()
    assert (stats.num_waiting_requests, stats.num_running_requests) == (2, 0)
    assert stats.num_tokens_in_flight == 20  # two uncomputed 10-token prompts
    core.step()  # a prefills 10, b its first 2 tokens
    stats = core.stats()
    assert (stats.num_waiting_requests, stats.num_running_requests) == (0, 2)
    # b: 8 prompt tokens left + 7 outputs; a: 5 - 1 outputs left.
    assert stats.num_tokens_in_flight == 8 + 7 + 4
    assert stats.num_kv_blocks == 64
    assert stats.kv_usage == pytest.approx(4 / 64)  # a: 3 blocks, b: 1 block


def test_duplicate_request_ids_are_rejected(make_core: MakeCore) -> None:
    core = make_core()
    core.add_request(EngineRequest("r", [1, 2], 5))
    with pytest.raises(ValueError, match="request_id: 'r' is already in use"):
        core.add_request(EngineRequest("r", [3, 4], 5))


def test_config_from_profile(simple_profile: LatencyProfile) -> None:
    config = EngineConfig.from_profile(simple_profile)
    assert config.model == simple_profile.model
    assert config.num_kv_blocks == 64  # 256 tokens / 4
    assert EngineConfig.from_profile(simple_profile, kv_capacity_tokens=10).num_kv_blocks == 2
    with pytest.raises(ValueError, match="kv_capacity_tokens: 3 tokens"):
        EngineConfig.from_profile(simple_profile, kv_capacity_tokens=3)
    with pytest.raises(ValueError, match="max_num_seqs: must be >= 1, got 0"):
        EngineConfig("m", simple_profile, 4, 4, 16, 0)


def replay(core: EngineCore, seed: int) -> list[object]:
    """Every engine call in a random mix on `core` (shared prefixes, holds, remote KV with
    failed pulls, aborts, preemption on a small pool); returns all the engine reported."""
    rng = random.Random(seed)
    prefixes = [[rng.randrange(1000) for _ in range(24)] for _ in range(3)]
    seen: list[object] = []
    request_ids: list[str] = []
    for n in range(200):
        action = rng.random()
        if action < 0.15:
            prompt = rng.choice(prefixes)[: rng.randrange(1, 24)] + [n] * rng.randrange(0, 9)
            kind = rng.random()
            request = EngineRequest(
                f"r{n}",
                prompt,
                max_tokens=rng.randrange(2, 60),
                ignore_eos=rng.random() < 0.5,
                prefill_only=kind < 0.2,
                remote_kv=0.2 <= kind < 0.4,
                first_token_id=7 if 0.2 <= kind < 0.4 else None,
            )
            try:
                core.add_request(request)
                request_ids.append(request.request_id)
            except ValueError as error:
                seen.append(str(error))
        elif action < 0.9:
            if core.has_unfinished_work():
                seen.append(core.step())
            for load in core.take_kv_loads():
                seen.append(load)
                core.finish_kv_load(load.request_id, ok=rng.random() < 0.8)
        elif request_ids:
            request_id = rng.choice(request_ids)
            if rng.random() < 0.5:
                seen.append(core.abort(request_id))
            else:
                try:
                    core.release_kv(request_id)
                except ValueError as error:  # not holding (yet, or any more)
                    seen.append(str(error))
        seen.append(core.stats())
        seen.extend(core.drain_kv_events())
    return seen


@pytest.mark.parametrize("seed", range(8))
def test_decode_only_steps_match_the_general_schedule(
    make_core: MakeCore, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    # `schedule_decodes` is a shortcut for the steps `schedule` would make of the running
    # batch alone; without it every step goes the general way, and nothing may differ.
    with monkeypatch.context() as patched:
        patched.setattr(Scheduler, "schedule_decodes", lambda self: None)
        general = replay(make_core(num_kv_blocks=24), seed)
    assert replay(make_core(num_kv_blocks=24), seed) == general


@pytest.mark.parametrize("seed", range(8))
def test_an_engine_that_does_not_stream_outputs_only_first_and_last_tokens(
    make_core: MakeCore, seed: int
) -> None:
    # streams_tokens=False (the simulator's engines) drops the outputs of tokens that
    # neither start nor end a request, and changes nothing else: the same steps, times,
    # loads, KV events and errors as a streaming engine whose middle outputs are dropped.
    def first_or_last(seen: list[object]) -> list[object]:
        return [
            dataclasses.replace(
                item,
                outputs=[o for o in item.outputs if o.is_prefill_done or o.finish_reason],
            )
            if isinstance(item, StepResult)
            else item
            for item in seen
        ]

    streaming = replay(make_core(num_kv_blocks=24), seed)
    quiet = replay(make_core(num_kv_blocks=24, streams_tokens=False), seed)
    assert quiet == first_or_last(streaming)
    assert len(quiet) == len(streaming)
    num_outputs = [
        sum(len(i.outputs) for i in s if isinstance(i, StepResult)) for s in (quiet, streaming)
    ]
    assert 0 < num_outputs[0] < num_outputs[1]  # tokens mid-answer were streamed, then not


@pytest.mark.parametrize("seed", range(8))
def test_tokens_in_flight_equal_their_definition_after_every_call(
    make_core: MakeCore, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    # The request queues keep the running batch's share of `num_tokens_in_flight` as a sum
    # updated by each step (decode-only steps too), hold, finish, preemption and abort;
    # after every call of the mix it must equal the walk over the queues.
    stats = EngineCore.stats
    num_checked = 0

    def checked(core: EngineCore) -> EngineStats:
        nonlocal num_checked
        queues = core._queues
        walked = sum(
            max(0, s.num_prompt_tokens - s.num_computed_tokens)
            for s in (*queues.waiting, *queues.loaded)
            if not s.needs_remote_kv
        ) + sum(
            max(0, s.num_prompt_tokens - s.num_computed_tokens)
            + s.request.max_tokens
            - s.num_output_tokens
            for s in queues.running
        )
        result = stats(core)
        assert result.num_tokens_in_flight == walked
        num_checked += 1
        return result

    monkeypatch.setattr(EngineCore, "stats", checked)
    replay(make_core(num_kv_blocks=24), seed)
    assert num_checked == 200  # one check per call of the mix


def test_supplied_prompt_hashes_change_nothing(make_core: MakeCore) -> None:
    hashed, plain = make_core(), make_core()
    prompt = list(range(1000, 1014))  # 3 full blocks and a partial one
    hashes = hash_blocks(prompt, BLOCK_SIZE, "test-model")
    hashed.add_request(EngineRequest("r", prompt, 20, prompt_block_hashes=hashes))
    plain.add_request(EngineRequest("r", prompt, 20))
    assert run_until_idle(hashed) == run_until_idle(plain)
    assert hashed.drain_kv_events() == plain.drain_kv_events()


def test_reconfiguring_changes_capacity_from_the_next_step(make_core: MakeCore) -> None:
    core = make_core(max_num_seqs=1)
    core.add_request(EngineRequest("a", PROMPT, max_tokens=30, ignore_eos=True))
    core.add_request(EngineRequest("b", list(range(2000, 2010)), max_tokens=30, ignore_eos=True))
    core.step()
    assert (core.stats().num_running_requests, core.stats().num_waiting_requests) == (1, 1)
    # An EP group gaining a rank: twice the sequences, blocks and step budget.
    config = core.config
    bigger = dataclasses.replace(
        config,
        num_kv_blocks=2 * config.num_kv_blocks,
        max_num_seqs=2,
        max_num_batched_tokens=2 * config.max_num_batched_tokens,
        num_ep_ranks=2,
    )
    core.reconfigure(bigger)
    assert core.config is bigger and core.stats().num_kv_blocks == 2 * config.num_kv_blocks
    core.step()
    assert core.stats().num_running_requests == 2
    assert finish_reasons(run_until_idle(core)) == {"a": "length", "b": "length"}


def test_a_reconfigured_engine_keeps_its_model(make_core: MakeCore) -> None:
    core = make_core()
    with pytest.raises(ValueError, match="model: a reconfigured engine keeps its model"):
        core.reconfigure(dataclasses.replace(core.config, model="other"))

"""The prefill hold on live (scripted, in-memory) workers: a prefill for a busy worker
waits in the router, moves to its runner-up when that is sooner, and goes once the worker
has room; a client leaving while held leaves the hold."""

from __future__ import annotations

import asyncio

import pytest

from triskel.common.api import Role
from triskel.common.routing_api import PrefillHoldSpec, RoutingSettings, TimeoutsSpec
from triskel.router.scheduling.types import WorkerLoad

from support.scripted_workers import (
    PROMPT_IDS,
    Script,
    ScriptedWorker,
    answer_text,
    generate,
    loads_seen,
    router_on,
    until,
)

TIMEOUTS = TimeoutsSpec(worker_silence_s=1, token_idle_s=1)
HOLDING = RoutingSettings(prefill_hold=PrefillHoldSpec(max_per_worker=8), timeouts=TIMEOUTS)
HELD = "triskel_router_held_prefills"
MOVES = "triskel_router_prefill_moves_total"


def workers() -> tuple[ScriptedWorker, ScriptedWorker, ScriptedWorker]:
    # p0 (picked first: round-robin in the order given) has ~100,000 tokens queued,
    # p1 one step's budget (8,192): both busy, p1 far sooner.
    p0 = ScriptedWorker("p0", Script(load=WorkerLoad(num_tokens_in_flight=100_000)), Role.PREFILL)
    p1 = ScriptedWorker("p1", Script(load=WorkerLoad(num_tokens_in_flight=8192)), Role.PREFILL)
    return p0, p1, ScriptedWorker("d0", Script(), Role.DECODE)


@pytest.mark.asyncio
async def test_a_held_prefill_moves_to_its_runner_up_and_goes_when_it_has_room() -> None:
    p0, p1, d0 = workers()
    async with router_on(HOLDING, p0, p1, d0) as router:
        await loads_seen(router)
        answer = asyncio.create_task(generate(router, max_tokens=4))
        await until(lambda: router.count(HELD, model="m") == 1, "the prefill was not held")
        assert router.count(MOVES, model="m") == 1  # p0 -> p1, the sooner of the two
        assert p0.prefill_calls == p1.prefill_calls == []
        p1.script.load = WorkerLoad()  # p1's queue drains
        assert (await answer).text == answer_text(len(PROMPT_IDS), 4)
        assert (len(p0.prefill_calls), len(p1.prefill_calls)) == (0, 1)
        assert router.count(HELD, model="m") == 0


@pytest.mark.asyncio
async def test_without_a_hold_the_prefill_goes_to_the_busy_worker_at_once() -> None:
    p0, p1, d0 = workers()
    async with router_on(RoutingSettings(timeouts=TIMEOUTS), p0, p1, d0) as router:
        await loads_seen(router)
        assert (await generate(router, max_tokens=4)).text == answer_text(len(PROMPT_IDS), 4)
        assert (len(p0.prefill_calls), len(p1.prefill_calls)) == (1, 0)


@pytest.mark.asyncio
async def test_a_client_leaving_while_held_leaves_the_hold() -> None:
    p0, p1, d0 = workers()
    async with router_on(HOLDING, p0, p1, d0) as router:
        await loads_seen(router)
        answer = asyncio.create_task(generate(router, max_tokens=4))
        await until(lambda: router.count(HELD, model="m") == 1, "the prefill was not held")
        answer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answer
        assert router.count(HELD, model="m") == 0
        p1.script.load = WorkerLoad()
        p0.script.load = WorkerLoad()
        await loads_seen(router)
        assert p0.prefill_calls == p1.prefill_calls == []

"""A unified worker that freezes or stalls mid-request: before its first token the request
is retried on another worker; after it, the answer continues on another worker
(test_flows_migration.py), or, with none left or migration off, the stream ends with an
error naming the step. The whole router path runs over scripted in-memory workers."""

from __future__ import annotations

import asyncio

import pytest

from triskel.common.routing_api import RoutingSettings, TimeoutsSpec
from triskel.router.types import ServiceError

from support.scripted_workers import (
    PROMPT_IDS,
    Failure,
    Script,
    ScriptedWorker,
    answer_text,
    generate,
    router_on,
)

# The shortest bound the configuration accepts, for the one each test is about.
SILENCE = RoutingSettings(timeouts=TimeoutsSpec(worker_silence_s=1))
IDLE = RoutingSettings(timeouts=TimeoutsSpec(token_idle_s=1))
WHOLE_ANSWER = answer_text(len(PROMPT_IDS), 8)


@pytest.mark.asyncio
async def test_a_worker_frozen_before_its_first_token_is_retried_on_another() -> None:
    frozen = ScriptedWorker("u0", Script(fail_after=0, failure=Failure.FREEZES))
    healthy = ScriptedWorker("u1")
    async with router_on(SILENCE, frozen, healthy) as router:
        answer = await generate(router)  # round-robin: u0 first
    assert answer.finish.completion_tokens == 8 and answer.text == WHOLE_ANSWER
    assert (frozen.num_decodes, healthy.num_decodes) == (1, 1)
    # The same call again: nothing was produced, so nothing is continued.
    assert healthy.decode_calls[0] == frozen.decode_calls[0]


@pytest.mark.asyncio
async def test_a_worker_frozen_mid_stream_ends_it_with_an_error_naming_the_step() -> None:
    frozen = ScriptedWorker("u0", Script(fail_after=2, failure=Failure.FREEZES))
    no_migration = SILENCE.model_copy(update={"migration_limit": 0})
    async with router_on(no_migration, frozen, ScriptedWorker("u1")) as router:
        answer = await generate(router)
        # Without migration, tokens sent cannot be taken back: the stream ends.
        assert answer.text == answer_text(len(PROMPT_IDS), 2)
        assert isinstance(answer.end, ServiceError)
        assert str(answer.end) == (
            "the unified step for model m stopped: its worker stopped responding; retry later"
        )
        # Out of rotation while silent: the next requests go to u1 alone.
        for _ in range(2):
            assert (await generate(router)).finish.completion_tokens == 8
        assert frozen.num_decodes == 1
        # Reporting again: back in rotation.
        frozen.script = Script()
        frozen.reporting.set()
        async with asyncio.timeout(10):
            while frozen.num_decodes == 1:
                assert (await generate(router)).finish.completion_tokens == 8


@pytest.mark.asyncio
async def test_a_stream_that_stalls_past_token_idle_s_ends_with_a_timeout() -> None:
    # The worker still reports (its engine, not its process, is stuck), and no other
    # worker is left to continue the answer.
    stalled = ScriptedWorker("u0", Script(fail_after=1, failure=Failure.STALLS))
    async with router_on(IDLE, stalled) as router:
        answer = await generate(router)
    assert answer.text == answer_text(len(PROMPT_IDS), 1)
    assert isinstance(answer.end, ServiceError)
    assert str(answer.end) == "the unified step for model m timed out; retry later"


@pytest.mark.asyncio
async def test_the_idle_bound_waits_for_the_first_token() -> None:
    # Queued or prefilling on the worker longer than tokenIdleS: not a stall.
    slow_start = ScriptedWorker("u0", Script(first_token_delay_s=1.5))
    async with router_on(IDLE, slow_start) as router:
        answer = await generate(router)
    assert answer.finish.completion_tokens == 8 and answer.text == WHOLE_ANSWER

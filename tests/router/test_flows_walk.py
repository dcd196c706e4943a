"""The walk driven on live (scripted, in-memory) workers: adaptive disaggregation reads the
workers' load reports and prefills where the outlook is better, and the prefill's retry
follows the same rule as a decode's."""

from __future__ import annotations

import pytest

from triskel.common.api import Role
from triskel.common.routing_api import (
    DisaggregationMode,
    DisaggregationSpec,
    RoutingSettings,
    TimeoutsSpec,
)
from triskel.router.scheduling.types import WorkerLoad

from support.scripted_workers import (
    PROMPT_IDS,
    Script,
    ScriptedWorker,
    answer_text,
    generate,
    loads_seen,
    router_on,
)

PLACED = "triskel_router_prefill_placements_total"
ADAPTIVE = RoutingSettings(
    disaggregation=DisaggregationSpec(mode=DisaggregationMode.ADAPTIVE),
    timeouts=TimeoutsSpec(worker_silence_s=1, token_idle_s=1),
)


@pytest.mark.asyncio
async def test_adaptive_prefills_on_the_decode_worker_when_the_prefill_pool_is_queued() -> None:
    # 100,000 tokens queued ahead on the prefill worker: ~4.8 s before this prompt's turn.
    queued = Script(load=WorkerLoad(num_tokens_in_flight=100_000))
    prefill = ScriptedWorker("p0", queued, Role.PREFILL)
    decode = ScriptedWorker("d0", Script(), Role.DECODE)
    async with router_on(ADAPTIVE, prefill, decode) as router:
        await loads_seen(router)
        answer = await generate(router, max_tokens=4)
        assert answer.text == answer_text(len(PROMPT_IDS), 4)
        assert prefill.prefill_calls == []
        (call,) = decode.decode_calls
        assert call.kv is None and tuple(call.token_ids) == PROMPT_IDS
        assert router.count(PLACED, model="m", place="local") == 1
        assert router.count(PLACED, model="m", place="remote") == 0


@pytest.mark.asyncio
async def test_adaptive_keeps_a_busy_decode_worker_free_of_prefills() -> None:
    # 100 answers decoding there: a local prefill would hold up every one of them.
    busy = Script(load=WorkerLoad(num_running_requests=100))
    prefill = ScriptedWorker("p0", Script(), Role.PREFILL)
    decode = ScriptedWorker("d0", busy, Role.DECODE)
    async with router_on(ADAPTIVE, prefill, decode) as router:
        await loads_seen(router)
        answer = await generate(router, max_tokens=4)
        assert answer.text == answer_text(len(PROMPT_IDS), 4)
        assert len(prefill.prefill_calls) == 1
        (call,) = decode.decode_calls
        assert call.kv is not None
        assert router.count(PLACED, model="m", place="remote") == 1


@pytest.mark.asyncio
async def test_a_failed_prefill_is_retried_on_another_prefill_worker() -> None:
    always = RoutingSettings(timeouts=TimeoutsSpec(worker_silence_s=1, token_idle_s=1))
    failing = ScriptedWorker("p0", Script(prefill_fails=True), Role.PREFILL)
    healthy = ScriptedWorker("p1", Script(), Role.PREFILL)
    decode = ScriptedWorker("d0", Script(), Role.DECODE)
    async with router_on(always, failing, healthy, decode) as router:
        answer = await generate(router, max_tokens=4)
        assert answer.text == answer_text(len(PROMPT_IDS), 4)
        assert len(failing.prefill_calls) == 1 and len(healthy.prefill_calls) == 1
        assert router.count("triskel_router_retries_total", stage="prefill") == 1

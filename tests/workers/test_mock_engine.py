"""The mock engine runtime: real KV bytes between two engines, holds, cancellation, events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from triskel.common.api import Role
from triskel.common.request_limits import MAX_IMAGES_PER_REQUEST
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import (
    DecodeDone,
    DecodeEvent,
    DecodeParams,
    EngineInputError,
    EngineKvGone,
    EngineRoleError,
    ImageInput,
    KvReceived,
    Tokens,
)
from triskel.workers.engine.events import BlocksStored
from triskel.workers.mock_engine import MockEngine

from support.engines import mock_engine
from support.waiting import wait_until

# 40 tokens: two full 16-token blocks and a partial third.
PROMPT = list(range(1000, 1040))


@pytest_asyncio.fixture
async def engines() -> AsyncIterator[tuple[MockEngine, MockEngine, MockEngine]]:
    started = [
        mock_engine(Role.PREFILL, "prefill-0"),
        mock_engine(Role.DECODE, "decode-0"),
        mock_engine(Role.UNIFIED, "unified-0"),
    ]
    for engine in started:
        await engine.start()
    yield started[0], started[1], started[2]
    for engine in started:
        await engine.close()


async def collect(events: AsyncIterator[DecodeEvent]) -> list[DecodeEvent]:
    return [event async for event in events]


def tokens_of(events: list[DecodeEvent]) -> list[int]:
    return [t for e in events if isinstance(e, Tokens) for t in e.token_ids]


@pytest.mark.asyncio
async def test_split_prefill_and_decode_give_the_unified_tokens_with_real_kv_bytes(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    prefill, decode, unified = engines
    result = await prefill.prefill("r1", PROMPT, max_tokens=8, kv_hold_ms=10_000)
    assert result.kv is not None and result.finish_reason is None
    # The exporter's own block ids, one per exported block (vLLM's remote_block_ids).
    assert len(result.kv_block_ids) == result.kv.num_blocks == 3
    assert prefill.load().num_kv_holds == 1
    events = await collect(
        decode.decode(
            DecodeParams(
                "r1", PROMPT, 8, ignore_eos=True, kv=result.kv, first_token_id=result.first_token_id
            )
        )
    )
    received = events[0]
    assert isinstance(received, KvReceived)
    # ceil(40 / 16) = 3 blocks cross the wire, none was cached on the decode side yet.
    assert received.num_bytes == 3 * result.kv.block_bytes
    assert received.num_blocks_skipped == 0
    done = events[-1]
    assert isinstance(done, DecodeDone) and done.finish_reason == "length"
    # The pull released the prefill worker's hold.
    assert prefill.load().num_kv_holds == 0
    reference = tokens_of(await collect(unified.decode(DecodeParams("u1", PROMPT, 8, True))))
    assert [result.first_token_id, *tokens_of(events)] == reference
    assert result.first_token_text == MockTokenizer().decode([reference[0]])


@pytest.mark.asyncio
async def test_a_second_pull_of_the_same_prefix_skips_blocks_the_decoder_cached(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    prefill, decode, _ = engines
    for request_id, expected_skipped in (("a", 0), ("b", 2)):
        result = await prefill.prefill(request_id, PROMPT, max_tokens=2, kv_hold_ms=10_000)
        assert result.kv is not None
        events = await collect(
            decode.decode(
                DecodeParams(
                    request_id, PROMPT, 2, True, kv=result.kv, first_token_id=result.first_token_id
                )
            )
        )
        assert isinstance(events[0], KvReceived)
        # The two full blocks are cached after the first request; the partial one is not.
        assert events[0].num_blocks_skipped == expected_skipped


@pytest.mark.asyncio
async def test_an_unpulled_hold_expires_and_a_late_pull_is_a_clear_failure(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    prefill, decode, _ = engines
    result = await prefill.prefill("late", PROMPT, max_tokens=4, kv_hold_ms=20)
    assert result.kv is not None
    await wait_until(lambda: prefill.load().num_kv_holds == 0)
    params = DecodeParams("late", PROMPT, 4, True, kv=result.kv, first_token_id=1)
    # Stale, not merely failed: the caller must prefill again rather than retry the pull.
    with pytest.raises(EngineKvGone, match=r"KV transfer failed.*unknown or expired"):
        await collect(decode.decode(params))
    assert decode.load().num_running_requests == 0


@pytest.mark.asyncio
async def test_closing_a_decode_stream_aborts_the_request_and_frees_its_blocks(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    _, _, unified = engines
    stream = unified.decode(DecodeParams("long", PROMPT, 4000, ignore_eos=True))
    first = await anext(stream)
    assert isinstance(first, Tokens)
    assert unified.load().kv_usage > 0
    await stream.aclose()  # type: ignore[attr-defined]
    load = unified.load()
    assert (load.num_running_requests, load.num_waiting_requests, load.kv_usage) == (0, 0, 0)


@pytest.mark.asyncio
async def test_cancel_frees_a_held_prefill(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    prefill, _, _ = engines
    await prefill.prefill("held", PROMPT, max_tokens=4, kv_hold_ms=60_000)
    assert await prefill.cancel("held")
    assert prefill.load().num_kv_holds == 0
    assert not await prefill.cancel("never-seen")


@pytest.mark.parametrize("freed_by", ["cancel", "expiry", "pull"])
@pytest.mark.asyncio
async def test_a_prefill_waiting_for_a_holds_blocks_runs_once_the_hold_is_freed(
    freed_by: str,
) -> None:
    # 1,024 tokens = 64 blocks; each 600-token prompt takes 38, so the second waits
    # for the first one's hold. The engine loop went to sleep on that wait and was
    # woken only by new requests: with none coming, the second one waited forever.
    prefill = mock_engine(Role.PREFILL, "prefill-small", capacity_tokens=1024)
    decode = mock_engine(Role.DECODE, "decode-0")
    await prefill.start()
    await decode.start()
    try:
        hold_ms = 300 if freed_by == "expiry" else 60_000
        first_prompt = list(range(1, 601))
        first = await prefill.prefill("first", first_prompt, max_tokens=8, kv_hold_ms=hold_ms)
        assert first.kv is not None
        second = asyncio.create_task(
            prefill.prefill("second", list(range(2000, 2600)), max_tokens=8, kv_hold_ms=60_000)
        )
        await wait_until(lambda: prefill.load().num_waiting_requests == 1)
        if freed_by == "cancel":
            assert await prefill.cancel("first")
        elif freed_by == "pull":
            params = DecodeParams(
                "first", first_prompt, 8, True, kv=first.kv, first_token_id=first.first_token_id
            )
            await collect(decode.decode(params))
        # A deadline, not a timing check: the prefill itself takes no modelled time.
        result = await asyncio.wait_for(second, timeout=10)
        assert result.kv is not None
    finally:
        await prefill.close()
        await decode.close()


@pytest.mark.asyncio
async def test_roles_and_inputs_are_checked(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    prefill, decode, _ = engines
    with pytest.raises(EngineRoleError, match="Prefill is not served by a decode worker"):
        await decode.prefill("x", PROMPT, 4, 0)
    with pytest.raises(EngineRoleError, match="Decode is not served by a prefill worker"):
        await collect(prefill.decode(DecodeParams("x", PROMPT, 4, True)))
    with pytest.raises(EngineInputError) as caught:
        await prefill.prefill("x", [], 4, 0)
    assert caught.value.field_name == "prompt_token_ids"
    with pytest.raises(EngineInputError, match="images"):
        await mock_engine(Role.ENCODE, "e").encode("x", [])


@pytest.mark.asyncio
async def test_an_encode_workers_refusals_read_an_encode_worker() -> None:
    # They read "a encode worker".
    encoder = mock_engine(Role.ENCODE, "e")
    with pytest.raises(EngineRoleError, match=r"^Prefill is not served by an encode worker "):
        await encoder.prefill("x", PROMPT, 4, 0)
    with pytest.raises(EngineRoleError, match=r"^an encode worker cannot change role$"):
        encoder.switch_role(Role.DECODE)


@pytest.mark.parametrize(
    ("sizes", "field_name"),
    [
        # 2^32-1 px a side took an encode worker to 12 GB before this check.
        ([(2**32 - 1, 2**32 - 1)], "images[0].width_px"),
        ([(336, 336), (16384, 16384)], "images[1].width_px"),
        ([(8192, 8192)], "images[0]"),  # each side fits, the pixel count does not
        ([(28, 28)] * (MAX_IMAGES_PER_REQUEST + 1), "images"),
    ],
)
@pytest.mark.asyncio
async def test_oversized_images_are_refused_before_encoding(
    sizes: list[tuple[int, int]], field_name: str
) -> None:
    engine = mock_engine(Role.ENCODE, "e")
    images = [ImageInput(f"https://x/{i}", w, h) for i, (w, h) in enumerate(sizes)]
    started_s = time.perf_counter()
    with pytest.raises(EngineInputError) as caught:
        await engine.encode("x", images)
    assert caught.value.field_name == field_name
    assert time.perf_counter() - started_s < 0.5  # refused, not encoded then refused


@pytest.mark.asyncio
async def test_kv_events_start_with_a_snapshot_then_follow_live(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    prefill, _, _ = engines
    await prefill.prefill("before", PROMPT, max_tokens=4, kv_hold_ms=60_000)
    subscription = prefill.kv_events()
    snapshot = await anext(subscription)
    assert snapshot.is_snapshot
    assert [len(e.block_hashes) for e in snapshot.events if isinstance(e, BlocksStored)] == [2]
    other = [p + 1 for p in PROMPT]
    await prefill.prefill("after", other, max_tokens=4, kv_hold_ms=60_000)
    live = await asyncio.wait_for(anext(subscription), 5)
    assert not live.is_snapshot
    stored = [e for e in live.events if isinstance(e, BlocksStored)]
    assert stored and stored[0].parent_hash is None
    # Ids continue from the snapshot's, so a subscriber can detect a gap.
    assert live.events[0].event_id == snapshot.events[0].event_id + 1
    await subscription.aclose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_tokens_made_while_the_reader_was_away_come_as_one_event(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    _, _, unified = engines
    stream = unified.decode(DecodeParams("burst", PROMPT, 24, ignore_eos=True))
    first = await anext(stream)
    assert isinstance(first, Tokens) and first.num_cached_tokens is not None
    # The engine runs on (time scale 0) while nobody reads: the rest waits in the queue.
    await wait_until(lambda: unified.load().num_running_requests == 0)
    rest = await collect(stream)
    burst, done = rest
    assert isinstance(burst, Tokens)
    assert len(first.token_ids) + len(burst.token_ids) == 24
    # One event, the same ids and text as one by one; cached tokens said once, first.
    assert burst.text == MockTokenizer().decode(list(burst.token_ids))
    assert burst.num_cached_tokens is None
    assert isinstance(done, DecodeDone) and done.num_generated_tokens == 24


@pytest.mark.asyncio
async def test_the_engine_counts_finished_requests_whatever_api_they_came_by(
    engines: tuple[MockEngine, MockEngine, MockEngine],
) -> None:
    # vLLM's request_success_total is the engine's count: a request over frames or gRPC
    # (which call the engine as here) counts as one over the HTTP API does.
    prefill, decode, unified = engines
    await collect(unified.decode(DecodeParams("u1", PROMPT, 4, ignore_eos=True)))
    await collect(unified.decode(DecodeParams("u2", PROMPT, 4, ignore_eos=False)))
    finished = unified.load().finished_total
    assert sum(finished.values()) == 2 and set(finished) <= {"stop", "length"}
    assert finished["length"] >= 1  # ignore_eos: it ran to max_tokens
    # A prefill held for its decode ends as vLLM's one-token prefill does: "length".
    result = await prefill.prefill("r1", PROMPT, max_tokens=4, kv_hold_ms=10_000)
    assert result.kv is not None
    assert prefill.load().finished_total == {"length": 1}
    await collect(
        decode.decode(
            DecodeParams(
                "r1", PROMPT, 4, ignore_eos=True, kv=result.kv, first_token_id=result.first_token_id
            )
        )
    )
    assert decode.load().finished_total == {"length": 1}
    assert prefill.load().finished_total == {"length": 1}  # the pull ends no second request

"""Decode, Prefill, Cancel, stats and KV events on an `Engine`, as worker.proto messages.

The one implementation behind both transports: the gRPC servicer (server.py) and the
frame server (frame_server.py) call these and differ only in how they carry the
messages and the engine's errors (EngineInputError, EngineRoleError, EngineFailure).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from triskel.common.kv_tiers import KvMedium
from triskel.v1 import worker_pb2
from triskel.workers.api import (
    DecodeDone,
    DecodeParams,
    Engine,
    EngineInputError,
    KvCacheEvent,
    KvReceived,
    Tokens,
)
from triskel.workers.engine.events import BlocksStored
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.registry import connector_type_problem

_DEFAULT_STATS_INTERVAL_MS = 100
_MEDIUM_PROTO = {KvMedium.GPU: worker_pb2.KV_MEDIUM_GPU, KvMedium.HOST: worker_pb2.KV_MEDIUM_HOST}


async def prefill(engine: Engine, request: worker_pb2.PrefillRequest) -> worker_pb2.PrefillResponse:
    require_request_id(request.request_id)
    result = await engine.prefill(
        request.request_id,
        request.token_ids,
        request.max_tokens,
        request.kv_hold_ms,
        seed=request.seed if request.HasField("seed") else None,
    )
    response = worker_pb2.PrefillResponse(
        first_token_id=result.first_token_id,
        first_token_text=result.first_token_text,
        num_cached_tokens=result.num_cached_tokens,
        elapsed_ms=result.elapsed_ms,
        finish_reason=result.finish_reason or "",
    )
    if result.kv is not None:
        response.kv.CopyFrom(result.kv.to_proto())
    return response


async def decode(
    engine: Engine, request: worker_pb2.DecodeRequest
) -> AsyncGenerator[worker_pb2.DecodeResponse, None]:
    """The request's events as messages; closing this iterator (a cancelled call)
    aborts the request on the engine."""
    has_kv = request.HasField("kv")
    require_request_id(request.request_id)
    params = DecodeParams(
        request_id=request.request_id,
        prompt_token_ids=list(request.token_ids),
        max_tokens=request.max_tokens,
        ignore_eos=request.ignore_eos,
        kv=kv_handle(request.kv) if has_kv else None,
        first_token_id=request.first_token_id if has_kv else None,
        seed=request.seed if request.HasField("seed") else None,
    )
    events = engine.decode(params)
    try:
        async for event in events:
            yield decode_response(event)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def cancel(engine: Engine, request: worker_pb2.CancelRequest) -> worker_pb2.CancelResponse:
    return worker_pb2.CancelResponse(found=await engine.cancel(request.request_id))


async def stats(
    engine: Engine, request: worker_pb2.StreamStatsRequest
) -> AsyncGenerator[worker_pb2.WorkerStats, None]:
    """A load report every `interval_ms` (default 100), until closed."""
    interval_s = (request.interval_ms or _DEFAULT_STATS_INTERVAL_MS) / 1000
    while True:
        load = engine.load()
        yield worker_pb2.WorkerStats(
            worker_id=load.worker_id,
            num_waiting_requests=load.num_waiting_requests,
            num_running_requests=load.num_running_requests,
            kv_usage=load.kv_usage,
            num_kv_blocks=load.num_kv_blocks,
            num_tokens_in_flight=load.num_tokens_in_flight,
            num_kv_holds=load.num_kv_holds,
            timestamp_ms=load.timestamp_ms,
            prefix_query_tokens_total=load.prefix_query_tokens_total,
            prefix_hit_tokens_total=load.prefix_hit_tokens_total,
        )
        await asyncio.sleep(interval_s)


async def kv_events(engine: Engine) -> AsyncGenerator[worker_pb2.KvEventBatch, None]:
    """The engine's KV event batches, a snapshot first; ends when the engine cuts this
    subscriber (it fell far behind)."""
    worker_id = engine.description.worker_id
    batches = engine.kv_events()
    try:
        async for batch in batches:
            yield worker_pb2.KvEventBatch(
                worker_id=worker_id,
                events=[_kv_event(event) for event in batch.events],
                is_snapshot=batch.is_snapshot,
            )
    finally:
        await batches.aclose()  # type: ignore[attr-defined]


def kv_handle(message: worker_pb2.KvHandle) -> KvHandle:
    """The request's handle; EngineInputError when it is not a usable one (an empty
    address, a block size of 0, which would otherwise escape as UNKNOWN; a connector
    that does not exist, which would fail as a pull, UNAVAILABLE, and be retried)."""
    try:
        handle = KvHandle.from_proto(message)
    except ValueError as error:
        raise EngineInputError("kv", str(error)) from None
    problem = connector_type_problem(handle.connector)
    if problem:
        raise EngineInputError("kv.connector", problem)
    return handle


def require_request_id(request_id: str) -> None:
    if not request_id:
        raise EngineInputError("request_id", "must not be empty")


def decode_response(event: KvReceived | Tokens | DecodeDone) -> worker_pb2.DecodeResponse:
    if isinstance(event, KvReceived):
        return worker_pb2.DecodeResponse(
            kv_received=worker_pb2.KvReceived(
                num_bytes=event.num_bytes,
                transfer_ms=event.transfer_ms,
                num_blocks_skipped=event.num_blocks_skipped,
            )
        )
    if isinstance(event, Tokens):
        tokens = worker_pb2.DecodeTokens(token_ids=event.token_ids, text=event.text)
        if event.num_cached_tokens is not None:
            tokens.num_cached_tokens = event.num_cached_tokens
        return worker_pb2.DecodeResponse(tokens=tokens)
    return worker_pb2.DecodeResponse(
        done=worker_pb2.DecodeDone(
            finish_reason=event.finish_reason,
            num_generated_tokens=event.num_generated_tokens,
            num_cached_tokens=event.num_cached_tokens,
        )
    )


def _kv_event(event: KvCacheEvent) -> worker_pb2.KvEvent:
    medium = _MEDIUM_PROTO[event.medium]
    if isinstance(event, BlocksStored):
        stored = worker_pb2.BlocksStored(block_hashes=event.block_hashes, medium=medium)
        if event.parent_hash is not None:
            stored.parent_hash = event.parent_hash
        return worker_pb2.KvEvent(event_id=event.event_id, stored=stored)
    removed = worker_pb2.BlocksRemoved(block_hashes=event.block_hashes, medium=medium)
    return worker_pb2.KvEvent(event_id=event.event_id, removed=removed)

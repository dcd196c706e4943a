"""Fuzzing the router's gRPC front: any `GenerateRequest` ends, within its deadline,
with an answer or a status naming the client's mistake, never UNKNOWN or INTERNAL,
and the router logs no traceback."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from hypothesis import event, given

from triskel.v1 import router_pb2, router_pb2_grpc

from support.cluster import local_cluster, small_config
from support.fuzz_messages import MODEL, generate_requests
from support.fuzzing import (
    CALL_DEADLINE_S,
    CLEAR_CODES,
    FUZZ_POOLS,
    FUZZ_SETTINGS,
    MAX_MESSAGES_READ,
    MAX_RSS_GROWTH_BYTES,
    assert_no_tracebacks,
    rss_bytes,
)


def call(stub: router_pb2_grpc.RouterStub, request: router_pb2.GenerateRequest) -> None:
    """Streams the answer (a part of it), asserting how it ends."""
    stream = stub.Generate(request, timeout=CALL_DEADLINE_S)
    num_read = 0
    try:
        for message in stream:
            num_read += 1
            if message.HasField("finished"):
                assert message.finished.finish_reason in ("stop", "length"), message
                event("finished")
                return
            if num_read == MAX_MESSAGES_READ:
                stream.cancel()
                event("cancelled after streaming")
                return
    except grpc.RpcError as error:
        code = error.code()
        assert code in CLEAR_CODES, f"{code}: {error.details()}"
        assert error.details(), f"{code} without a message"
        event(f"{code.name}: {error.details().split(':')[0]}")
        return
    raise AssertionError("the stream ended without a Finished message")


def fuzz_generate(grpc_address: str) -> None:
    with grpc.insecure_channel(grpc_address) as channel:
        stub = router_pb2_grpc.RouterStub(channel)

        @FUZZ_SETTINGS
        @given(generate_requests())
        def generate_ends_clearly(request: router_pb2.GenerateRequest) -> None:
            call(stub, request)

        generate_ends_clearly()
        # Still serving a plain request after the fuzzing.
        plain = router_pb2.GenerateRequest(model=MODEL, prompt="hello there", max_tokens=3)
        messages = list(stub.Generate(plain, timeout=CALL_DEADLINE_S))
        assert messages[-1].finished.usage.completion_tokens >= 1


@pytest.mark.asyncio
async def test_any_generate_request_ends_with_an_answer_or_a_clear_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rss_before = rss_bytes()
    async with local_cluster(small_config(FUZZ_POOLS)) as cluster:
        await asyncio.to_thread(fuzz_generate, cluster.grpc_address)
    assert_no_tracebacks(caplog.records)
    assert rss_bytes() - rss_before < MAX_RSS_GROWTH_BYTES

"""Fuzzing the worker's gRPC service: Prefill, Decode, Encode and SwitchRole requests of
any shape, sent to workers of every role, end within their deadline with an answer or a
status naming the problem, never UNKNOWN or INTERNAL, and no worker logs a traceback.

Decode requests also carry KV handles from a real prefill with one field changed, so
the exporter's checks (token, sizes, checksums) meet hostile pulls on a live listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from triskel.v1 import worker_pb2, worker_pb2_grpc

from support.fuzz_messages import (
    UINT32,
    UINT64,
    decode_requests,
    encode_requests,
    prefill_requests,
    short_texts,
    switch_role_requests,
)
from support.fuzzing import (
    CALL_DEADLINE_S,
    CLEAR_CODES,
    FUZZ_SETTINGS,
    MAX_MESSAGES_READ,
    MAX_RSS_GROWTH_BYTES,
    assert_no_tracebacks,
    rss_bytes,
)
from support.local_workers import local_worker, mock_pool

# A decode whose KV pull fails (no exporter there, or one that refuses) is UNAVAILABLE:
# the peer, not the request, is the problem.
PULL_CODES = CLEAR_CODES | {grpc.StatusCode.UNAVAILABLE}
ROLES = ("prefill", "decode", "encode", "switchable")


@dataclass(frozen=True, slots=True)
class Call:
    """One RPC to one worker: which worker, which method, with what."""

    worker: str
    method: str
    request: Message


def calls(mutated_decodes: st.SearchStrategy[worker_pb2.DecodeRequest]) -> st.SearchStrategy[Call]:
    # Any worker gets any of the serving calls (a role error is an answer too); only the
    # switchable worker changes role, so the others keep theirs for the final check.
    workers = st.sampled_from(ROLES)
    served = st.one_of(
        st.tuples(st.just("Prefill"), prefill_requests()),
        st.tuples(st.just("Decode"), decode_requests()),
        st.tuples(st.just("Decode"), mutated_decodes),
        st.tuples(st.just("Encode"), encode_requests()),
    )
    return st.one_of(
        st.builds(lambda worker, m: Call(worker, m[0], m[1]), workers, served),
        st.builds(Call, st.just("switchable"), st.just("SwitchRole"), switch_role_requests()),
    )


HANDLE_MUTATIONS: dict[str, st.SearchStrategy[object]] = {
    "request_id": short_texts(),
    "capability": short_texts(),
    "num_tokens": UINT32,
    "block_bytes": UINT64,
    "block_checksums": st.lists(UINT64, max_size=40),
}


def mutated_decodes(
    real_prefill: Callable[[], worker_pb2.PrefillResponse],
) -> st.SearchStrategy[worker_pb2.DecodeRequest]:
    """A decode of a fresh real prefill's KV with one handle field changed (or none)."""

    @st.composite
    def build(draw: st.DrawFn) -> worker_pb2.DecodeRequest:
        prefill = real_prefill()
        handle = worker_pb2.KvHandle()
        handle.CopyFrom(prefill.kv)
        name = draw(st.sampled_from([None, *HANDLE_MUTATIONS]))
        if name is not None:
            value = draw(HANDLE_MUTATIONS[name])
            if isinstance(value, list):
                handle.ClearField(name)
                getattr(handle, name).extend(value)
            else:
                setattr(handle, name, value)
        return worker_pb2.DecodeRequest(
            request_id=draw(st.sampled_from(["pulled", handle.request_id])),
            token_ids=list(range(40)),
            max_tokens=draw(st.integers(1, 30)),
            kv=handle,
            first_token_id=prefill.first_token_id,
        )

    return build()


def invoke(stubs: dict[str, worker_pb2_grpc.WorkerStub], call: Call) -> None:
    method = getattr(stubs[call.worker], call.method)
    allowed = PULL_CODES if call.method == "Decode" else CLEAR_CODES
    try:
        if call.method != "Decode":
            method(call.request, timeout=CALL_DEADLINE_S)
            return
        stream = method(call.request, timeout=CALL_DEADLINE_S)
        for num_read, message in enumerate(stream, 1):
            if message.HasField("done"):
                return
            if num_read == MAX_MESSAGES_READ:
                stream.cancel()
                return
        raise AssertionError("a decode stream ended without DecodeDone")
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.CANCELLED and call.method == "Decode":
            return  # ours
        assert code in allowed, f"{call.worker}.{call.method}: {code}: {error.details()}"
        assert error.details(), f"{code} without a message"


def fuzz_workers(addresses: dict[str, str]) -> None:
    with contextlib.ExitStack() as stack:
        stubs = {
            role: worker_pb2_grpc.WorkerStub(stack.enter_context(grpc.insecure_channel(address)))
            for role, address in addresses.items()
        }
        counter = iter(range(1_000_000))

        def real_prefill() -> worker_pb2.PrefillResponse:
            request = worker_pb2.PrefillRequest(
                request_id=f"real-{next(counter)}", token_ids=list(range(40)), max_tokens=8
            )
            response: worker_pb2.PrefillResponse = stubs["prefill"].Prefill(
                request, timeout=CALL_DEADLINE_S
            )
            return response

        @FUZZ_SETTINGS
        @given(calls(mutated_decodes(real_prefill)))
        def call_ends_clearly(call: Call) -> None:
            invoke(stubs, call)

        call_ends_clearly()
        # The prefill worker still exports, and a decode worker still pulls.
        prefill = real_prefill()
        decode = worker_pb2.DecodeRequest(
            request_id="after-fuzzing",
            token_ids=list(range(40)),
            max_tokens=4,
            kv=prefill.kv,
            first_token_id=prefill.first_token_id,
            ignore_eos=True,
        )
        events = list(stubs["decode"].Decode(decode, timeout=CALL_DEADLINE_S))
        assert events[0].HasField("kv_received"), events[0]
        assert events[-1].done.finish_reason == "length", events[-1]


@contextlib.asynccontextmanager
async def workers() -> AsyncIterator[dict[str, str]]:
    """One worker per role (tcp KV) and one that starts unified for SwitchRole; their
    gRPC addresses by role."""
    async with (
        local_worker(mock_pool("prefill", time_scale=0.001), "prefill-0") as prefill,
        local_worker(mock_pool("decode", time_scale=0.001), "decode-0") as decode,
        local_worker(mock_pool("encode", time_scale=0.001), "encode-0") as encode,
        local_worker(mock_pool("unified", time_scale=0.001), "switchable-0") as switchable,
    ):
        yield {
            "prefill": prefill.endpoints.grpc,
            "decode": decode.endpoints.grpc,
            "encode": encode.endpoints.grpc,
            "switchable": switchable.endpoints.grpc,
        }


@pytest.mark.asyncio
async def test_any_worker_request_ends_with_an_answer_or_a_clear_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rss_before = rss_bytes()
    async with workers() as addresses:
        await asyncio.to_thread(fuzz_workers, addresses)
    assert_no_tracebacks(caplog.records)
    assert rss_bytes() - rss_before < MAX_RSS_GROWTH_BYTES

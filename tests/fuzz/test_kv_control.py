"""Fuzzing a worker's KV control listener (tcp connector): random bytes, truncated,
oversized and well-formed-but-wrong frames. Each connection gets the challenge, then a
bare "refused" or a close, within a deadline; no frame allocates beyond the frame cap;
the listener keeps serving, and a real pull works afterwards."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers.kv.control import MAX_FRAME_BYTES, parse_address

from support.fuzz_messages import INT64, ODD_CHARACTERS
from support.fuzzing import FUZZ_SETTINGS, assert_no_tracebacks
from support.local_workers import local_worker, mock_pool

HEADER = struct.Struct("!I")
# How long the listener may take to answer or close (it reads no more than one frame).
REPLY_DEADLINE_S = 10.0
REFUSED = {"ok": False, "num_bytes": 0, "error": "refused", "code": "refused"}
# What a fuzzing run may allocate at its peak: a few frames' worth, nowhere near the
# 4 GiB a trusted length prefix would (finding 4: 16 MiB per socket).
MAX_PEAK_ALLOCATED_BYTES = 32 * MAX_FRAME_BYTES
PULL_FIELDS = (
    "op",
    "request_id",
    "num_blocks",
    "skip_blocks",
    "block_bytes",
    "dest_block_ids",
    "params",
    "capability",
    "proof",
)

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), INT64, st.floats(allow_nan=False), st.text(ODD_CHARACTERS)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def pull_frames(request_id: str, capability: str) -> st.SearchStrategy[bytes]:
    """A pull frame for a live export, each field kept or replaced by any JSON value
    (the proof is never right: the fuzzer does not hold the key)."""
    honest: dict[str, Any] = {
        "op": "pull",
        "request_id": request_id,
        "num_blocks": 3,
        "skip_blocks": 0,
        "block_bytes": 4096,
        "dest_block_ids": [0, 1, 2],
        "params": {},
        "capability": capability,
        "proof": "AAAA",
    }
    replaced = st.dictionaries(st.sampled_from(PULL_FIELDS), JSON_VALUES, max_size=3)
    return st.builds(lambda r: frame(orjson.dumps({**honest, **r})), replaced)


def payloads(request_id: str, capability: str) -> st.SearchStrategy[bytes]:
    lengths = st.one_of(
        st.sampled_from([0, 1, MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, 16 << 20, 2**32 - 1]),
        st.integers(0, 2**32 - 1),
    )
    return st.one_of(
        st.binary(max_size=2048),  # noise
        st.builds(lambda n, body: HEADER.pack(n) + body, lengths, st.binary(max_size=512)),
        st.builds(lambda v: frame(orjson.dumps(v)), JSON_VALUES),  # any JSON, even an object
        pull_frames(request_id, capability),
        st.lists(pull_frames(request_id, capability), min_size=2, max_size=4).map(b"".join),
        # A frame cut short anywhere.
        st.builds(
            lambda f, cut: f[: cut % max(len(f), 1)],
            pull_frames(request_id, capability),
            st.integers(0, 500),
        ),
    )


def read_frame(sock: socket.socket) -> dict[str, Any] | None:
    """The next frame from the listener, or None when it closed the connection."""
    header = read_exactly(sock, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    assert length <= MAX_FRAME_BYTES, f"listener sent a {length}-byte frame"
    body = read_exactly(sock, length)
    assert body is not None, "listener closed mid-frame"
    reply = orjson.loads(body)
    assert isinstance(reply, dict), reply
    return reply


def read_exactly(sock: socket.socket, num_bytes: int) -> bytes | None:
    chunks = b""
    while len(chunks) < num_bytes:
        try:
            chunk = sock.recv(num_bytes - len(chunks))
        except ConnectionResetError:
            return None  # a close with our bytes unread: still a close
        if not chunk:
            return None
        chunks += chunk
    return chunks


def send_and_expect_refusal(address: str, payload: bytes) -> None:
    host, port = parse_address(address)
    with socket.create_connection((host, port), timeout=REPLY_DEADLINE_S) as sock:
        challenge = read_frame(sock)
        assert challenge is not None and challenge.get("op") == "challenge", challenge
        try:
            sock.sendall(payload)
            # Our side is done: the listener sees the end of a truncated frame now
            # rather than after its read deadline.
            sock.shutdown(socket.SHUT_WR)
        except TimeoutError:
            raise
        except OSError:  # reset, broken pipe, not connected
            return  # the listener closed on what it had read already
        replies = []
        while (reply := read_frame(sock)) is not None:
            replies.append(reply)
        # socket.timeout (an OSError) ends the test here: the listener neither answered
        # nor closed within REPLY_DEADLINE_S.
    assert replies in ([], [REFUSED]), replies


@dataclass(frozen=True, slots=True)
class Workers:
    prefill: worker_pb2_grpc.WorkerStub
    decode: worker_pb2_grpc.WorkerStub


# The live export must outlast the whole fuzzing run (the default hold, 30 s, did not on
# a slow CI machine: its capability expired and the closing pull was refused).
LIVE_HOLD_MS = 600_000


def real_prefill(workers: Workers, request_id: str) -> worker_pb2.PrefillResponse:
    request = worker_pb2.PrefillRequest(
        request_id=request_id, token_ids=list(range(40)), max_tokens=4, kv_hold_ms=LIVE_HOLD_MS
    )
    response: worker_pb2.PrefillResponse = workers.prefill.Prefill(request, timeout=10)
    return response


def assert_pulls(workers: Workers, handle: worker_pb2.KvHandle, first_token_id: int) -> None:
    decode = worker_pb2.DecodeRequest(
        request_id=f"pull-{handle.request_id}",
        token_ids=list(range(40)),
        max_tokens=3,
        kv=handle,
        first_token_id=first_token_id,
    )
    events = list(workers.decode.Decode(decode, timeout=10))
    assert events[0].HasField("kv_received"), events[0]
    assert events[-1].HasField("done"), events[-1]


def fuzz_listener(workers: Workers) -> int:
    """Fuzzes the prefill worker's KV listener; returns the peak bytes allocated."""
    live = real_prefill(workers, "live-export").kv
    peaks: list[int] = []
    tracemalloc.start()
    try:

        @FUZZ_SETTINGS
        @given(payloads(live.request_id, live.capability))
        def listener_refuses_or_closes(payload: bytes) -> None:
            # Growth over one connection, not the process's all-time peak: in a whole
            # suite's process other tests' leftovers allocate too (207 MB in CI).
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            send_and_expect_refusal(live.address, payload)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)

        listener_refuses_or_closes()
        peak_bytes = max(peaks, default=0)
    finally:
        tracemalloc.stop()
    # The live export survived every hostile pull, and a real pull still works.
    assert_pulls(workers, live, first_token_id=0)
    after = real_prefill(workers, "after-fuzzing")
    assert_pulls(workers, after.kv, after.first_token_id)
    return peak_bytes


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[Workers]:
    async with (
        local_worker(mock_pool("prefill", time_scale=0.001), "prefill-0") as prefill,
        local_worker(mock_pool("decode", time_scale=0.001), "decode-0") as decode,
    ):
        with (
            grpc.insecure_channel(prefill.endpoints.grpc) as prefill_channel,
            grpc.insecure_channel(decode.endpoints.grpc) as decode_channel,
        ):
            yield Workers(
                worker_pb2_grpc.WorkerStub(prefill_channel),
                worker_pb2_grpc.WorkerStub(decode_channel),
            )


@pytest.mark.asyncio
async def test_any_bytes_on_the_kv_listener_are_refused_or_closed(
    workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    peak_bytes = await asyncio.to_thread(fuzz_listener, workers)
    assert peak_bytes < MAX_PEAK_ALLOCATED_BYTES, f"{peak_bytes} bytes allocated at the peak"
    assert_no_tracebacks(caplog.records)

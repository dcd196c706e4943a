"""KV handles are capabilities: only the holder of the handle's token AND the graph's
key pulls, once, in time; everyone else hears "refused" and nothing more. Also the
costs a peer can impose on an exporter before it proves anything (frame size, time)."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.connector import KvTransferError
from triskel.workers.kv.control import PullRequest, parse_address
from triskel.workers.kv.registry import create_connector

from support.kv_pairs import ConnectorPair, connector_pair

# Mooncake's exporter writes into the importer's arena: a different data plane from
# tcp's, behind the same control-channel checks.
CONNECTOR_TYPES = ["tcp", "mooncake"]
NUM_BLOCKS = 8
BLOCK_BYTES = 4096
REFUSED = {"ok": False, "num_bytes": 0, "error": "refused", "code": "refused"}


@pytest_asyncio.fixture(params=CONNECTOR_TYPES)
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[ConnectorPair]:
    async with connector_pair(
        request.param,
        num_blocks=NUM_BLOCKS,
        block_bytes=BLOCK_BYTES,
        seed_base=1000,
        auth_key=KvAuthKey.generate(),
    ) as started:
        yield started


async def assert_refused_then_right_pull_works(pair: ConnectorPair, bad: Any, good: Any) -> None:
    with pytest.raises(KvTransferError, match="refused the pull"):
        await pair.importer.receive(bad, [4, 5])
    assert pair.done == []  # the export stays for its rightful puller
    assert pair.dest_block(4) != pair.source_block(0)
    assert await pair.importer.receive(good, [4, 5]) == 2 * BLOCK_BYTES
    assert pair.dest_block(4) == pair.source_block(0)


@pytest.mark.asyncio
async def test_a_pull_without_the_token_is_refused(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-1", [0, 1], num_tokens=32)
    stripped = dataclasses.replace(handle, capability="")
    await assert_refused_then_right_pull_works(pair, stripped, handle)


@pytest.mark.asyncio
async def test_a_pull_with_another_requests_token_is_refused(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-1", [0, 1], num_tokens=32)
    other = pair.exporter.describe("req-2", [2, 3], num_tokens=32)
    borrowed = dataclasses.replace(handle, capability=other.capability)
    await assert_refused_then_right_pull_works(pair, borrowed, handle)


@pytest.mark.asyncio
async def test_a_pull_after_expiry_is_refused(pair: ConnectorPair) -> None:
    expired = pair.exporter.describe("req-old", [0, 1], num_tokens=32, ttl_s=0)
    with pytest.raises(KvTransferError, match="refused the pull"):
        await pair.importer.receive(expired, [4, 5])
    assert pair.done == []
    handle = pair.exporter.describe("req-1", [0, 1], num_tokens=32)
    assert await pair.importer.receive(handle, [4, 5]) == 2 * BLOCK_BYTES


@pytest.mark.asyncio
async def test_a_reused_token_is_refused(pair: ConnectorPair) -> None:
    first = pair.exporter.describe("req-1", [0, 1], num_tokens=32)
    await pair.importer.receive(first, [4, 5])
    with pytest.raises(KvTransferError, match="refused the pull"):
        await pair.importer.receive(first, [4, 5])
    # The same request id exported again: the first token claims nothing of it.
    second = pair.exporter.describe("req-1", [2, 3], num_tokens=32)
    with pytest.raises(KvTransferError, match="refused the pull"):
        await pair.importer.receive(first, [4, 5])
    assert await pair.importer.receive(second, [4, 5]) == 2 * BLOCK_BYTES
    assert pair.dest_block(4) == pair.source_block(2)
    assert pair.done == ["req-1", "req-1"]


@pytest.mark.asyncio
async def test_a_leaked_token_is_useless_without_the_key(pair: ConnectorPair) -> None:
    # A worker of another graph (or any process without the key) holding the token.
    outsider = create_connector(pair.exporter.type_name, {})
    arena = KvArena(NUM_BLOCKS, BLOCK_BYTES)
    await outsider.start(arena, "outsider", auth_key=KvAuthKey.generate())
    handle = pair.exporter.describe("req-1", [0, 1], num_tokens=32)
    try:
        with pytest.raises(KvTransferError, match="hold different KV auth keys"):
            await outsider.receive(handle, [4, 5])
    finally:
        await outsider.close()
        arena.close()
    assert await pair.importer.receive(handle, [4, 5]) == 2 * BLOCK_BYTES


# -- a raw client on the control port: what a local attacker can do ------------------------


async def raw_pull(address: str, request: PullRequest) -> dict[str, Any]:
    """Sends `request` as soon as connected, as a client that ignores any handshake,
    and returns the exporter's PullReply frame."""
    host, port = parse_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        body = orjson.dumps(request.to_frame())
        writer.write(struct.pack("!I", len(body)) + body)
        while True:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            frame = orjson.loads(await reader.readexactly(length))
            if frame.get("op") != "challenge":
                return dict(frame)
    finally:
        writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["tcp"], indirect=True)
async def test_knowing_a_request_id_does_not_steal_its_kv(pair: ConnectorPair) -> None:
    # Issue 19: a local client that knew request ids pulled their KV (and their
    # clients got 503). Now it is refused, and the rightful pull still works.
    handle = pair.exporter.describe("req-1", [0, 1], num_tokens=32)
    theft = PullRequest("req-1", num_blocks=2, skip_blocks=0, block_bytes=BLOCK_BYTES,
                        dest_block_ids=(0, 1))  # fmt: skip
    assert await raw_pull(pair.exporter.address, theft) == REFUSED
    assert await pair.importer.receive(handle, [4, 5]) == 2 * BLOCK_BYTES


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["tcp"], indirect=True)
async def test_a_refusal_says_nothing_about_the_export(pair: ConnectorPair) -> None:
    # Issue 19: the size-mismatch refusal told a prober the export's true block count.
    pair.exporter.describe("req-1", [0, 1, 2], num_tokens=48)
    probe = PullRequest("req-1", num_blocks=1, skip_blocks=0, block_bytes=BLOCK_BYTES,
                        dest_block_ids=(0,))  # fmt: skip
    assert await raw_pull(pair.exporter.address, probe) == REFUSED
    unknown = dataclasses.replace(probe, request_id="no-such-request")
    assert await raw_pull(pair.exporter.address, unknown) == REFUSED


async def closes_within(address: str, payload: bytes, timeout_s: float) -> bool:
    """Whether the exporter hangs up within `timeout_s` of a client sending `payload`."""
    host, port = parse_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        async with asyncio.timeout(timeout_s):
            while await reader.read(65536):
                pass  # the challenge frame, then EOF
        return True
    except TimeoutError:
        return False
    finally:
        writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["tcp"], indirect=True)
async def test_an_oversized_control_frame_is_refused_before_it_is_read(pair: ConnectorPair) -> None:
    # Issue 19: a 16 MiB length was accepted and its buffer allocated (40 sockets:
    # 82 -> 722 MB). The length alone now ends the connection.
    header = struct.pack("!I", 16 << 20)
    assert await closes_within(pair.exporter.address, header, timeout_s=5)


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["tcp"], indirect=True)
async def test_a_slow_control_frame_times_out(pair: ConnectorPair) -> None:
    # Issue 19: a peer that connected and sent half a frame held its socket forever.
    pair.exporter.control_read_timeout_s = 0.2  # type: ignore[attr-defined]
    half_frame = struct.pack("!I", 100) + b"{"
    assert await closes_within(pair.exporter.address, half_frame, timeout_s=5)

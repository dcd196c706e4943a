from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from triskel.workers.kv.control import (
    MAX_FRAME_BYTES,
    ChannelClosed,
    ControlServer,
    FrameChannel,
    PullReply,
    PullRequest,
    format_address,
    open_channel,
    parse_address,
)


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [("127.0.0.1:80", "127.0.0.1", 80), ("[::1]:9000", "::1", 9000), ("node-1:1", "node-1", 1)],
)
def test_address_round_trip(address: str, host: str, port: int) -> None:
    assert parse_address(address) == (host, port)
    assert format_address(host, port) == address


@pytest.mark.parametrize("address", ["127.0.0.1", ":80", "host:port"])
def test_parse_address_names_the_bad_address(address: str) -> None:
    with pytest.raises(ValueError, match=f"address '{address}' is not host:port"):
        parse_address(address)


def test_pull_request_frame_round_trip() -> None:
    request = PullRequest("r", 3, 1, 64, (7, 8, 9), {"k": "v"})
    assert PullRequest.from_frame(request.to_frame()) == request
    assert request.num_pulled_bytes == 2 * 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"op": "push"}, "op 'push' is not 'pull'"),
        # JSON true is not a count, even though bool subclasses int in Python.
        ({"num_blocks": True}, "num_blocks must be int, got True"),
        ({"request_id": 5}, "request_id must be str, got 5"),
        ({"dest_block_ids": [1, "2"]}, "dest_block_ids must be a list of ints"),
        ({"params": {"k": 1}}, "params must map strings to strings"),
    ],
)
def test_pull_request_rejects_bad_frames(change: dict[str, Any], message: str) -> None:
    frame = {**PullRequest("r", 1, 0, 64, (0,)).to_frame(), **change}
    with pytest.raises(ValueError, match=message):
        PullRequest.from_frame(frame)


@pytest.mark.asyncio
async def test_frames_and_raw_bytes_share_one_connection() -> None:
    async def echo(channel: FrameChannel) -> None:
        frame = await channel.recv_frame()
        payload = bytearray(frame["num_bytes"])
        await channel.recv_into(memoryview(payload))
        await channel.send_frame(PullReply(ok=True, num_bytes=len(payload)).to_frame())
        await channel.send_buffers([memoryview(payload[::-1])])

    server = ControlServer(echo)
    address = await server.start("127.0.0.1")
    channel = await open_channel(address)
    try:
        payload = bytes(range(256)) * 1000
        await channel.send_frame({"num_bytes": len(payload)})
        await channel.send_buffers([memoryview(payload)])
        reply = PullReply.from_frame(await channel.recv_frame())
        assert reply == PullReply(ok=True, num_bytes=len(payload))
        back = bytearray(len(payload))
        await channel.recv_into(memoryview(back))
        assert bytes(back) == payload[::-1]
        # The server's handler returned, so it closed its end.
        with pytest.raises(ChannelClosed):
            await channel.recv_frame()
    finally:
        channel.close()
        await server.close()
        await server.close()  # idempotent


@pytest.mark.asyncio
async def test_oversized_frame_is_refused() -> None:
    received: asyncio.Queue[BaseException] = asyncio.Queue()

    async def read_one(channel: FrameChannel) -> None:
        try:
            await channel.recv_frame()
        except ValueError as error:
            received.put_nowait(error)

    server = ControlServer(read_one)
    channel = await open_channel(await server.start("127.0.0.1"))
    try:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(channel._sock, struct.pack("!I", MAX_FRAME_BYTES + 1))
        error = await asyncio.wait_for(received.get(), 10)
        assert f"exceeds {MAX_FRAME_BYTES}" in str(error)
    finally:
        channel.close()
        await server.close()


@pytest.mark.asyncio
async def test_connecting_to_a_closed_listener_fails() -> None:
    async def nothing(channel: FrameChannel) -> None:
        return None

    server = ControlServer(nothing)
    address = await server.start("127.0.0.1")
    await server.close()
    with pytest.raises(ConnectionRefusedError):
        await open_channel(address)

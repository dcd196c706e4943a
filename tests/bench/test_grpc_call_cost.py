"""bench/grpc_call_cost.py: its frame parser keeps partial frames, its framed server
answers what its client counts, and every mode completes a short run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from support.bench_scripts import load_bench_script

bench = load_bench_script("grpc_call_cost")


def _message(request_id: int, is_final: bool) -> bytes:
    return bytes(bench.frame(bench._HEADER.pack(request_id, 0, is_final) + bench._PAYLOAD))


class _RecordingTransport(asyncio.Transport):
    """Keeps each write apart, so a test sees how the protocol batched them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        pass


def test_a_partial_frame_stays_in_the_buffer() -> None:
    first, second = bench.frame(b"one"), bench.frame(b"second payload")
    buffer = bytearray(first + second[:5])  # 1.5 frames
    assert bench.pop_frames(buffer) == [b"one"]
    assert buffer == second[:5]
    assert bench.pop_frames(buffer) == []
    buffer += second[5:]
    assert bench.pop_frames(buffer) == [b"second payload"]
    assert buffer == b""


def test_an_oversized_length_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        bench.pop_frames(bytearray(b"\xff\xff\xff\xff" + b"x" * 8))


def test_the_server_answers_a_split_request_one_write_per_frame() -> None:
    server = bench.FramedServerProtocol()
    transport = _RecordingTransport()
    server.connection_made(transport)
    request = bench.frame(bench._HEADER.pack(7, 3, 0) + bench._PAYLOAD)
    server.data_received(request[:3])  # not even the length yet
    assert transport.writes == []
    server.data_received(request[3:])
    assert transport.writes == [_message(7, False), _message(7, False), _message(7, True)]
    assert all(len(write) == 4 + 48 for write in transport.writes)


@pytest.mark.asyncio
async def test_the_client_reassembles_replies_split_anywhere() -> None:
    connection = bench.FramedConnection()
    transport = _RecordingTransport()
    connection.connection_made(transport)
    for split in range(1, 3 * 52):
        request = asyncio.create_task(connection.request(3))
        await asyncio.sleep(0)  # it writes its request
        request_id = bench._HEADER.unpack_from(transport.writes.pop(), 4)[0]
        reply = _message(request_id, False) * 2 + _message(request_id, True)
        connection.data_received(reply[:split])
        connection.data_received(reply[split:])
        assert await asyncio.wait_for(request, 1) == 3


@pytest.mark.asyncio
async def test_a_lost_connection_fails_pending_and_later_requests() -> None:
    connection = bench.FramedConnection()
    connection.connection_made(_RecordingTransport())
    request = asyncio.create_task(connection.request(2))
    await asyncio.sleep(0)
    connection.data_received(_message(1, False))  # one of its two messages
    connection.connection_lost(ConnectionResetError())
    with pytest.raises(bench.StreamEndedError):
        await asyncio.wait_for(request, 1)
    with pytest.raises(bench.StreamEndedError):
        await connection.request(1)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Any, int]]:
    """(ports, pid) of a `--serve` subprocess."""
    process, ports = bench.start_server()
    yield ports, process.pid
    process.kill()
    process.wait()


@pytest.mark.asyncio
async def test_the_framed_server_sends_what_was_asked(server: tuple[Any, int]) -> None:
    ports, _ = server
    connection = await bench.FramedConnection.open(ports.framed)
    try:
        assert await connection.request(1) == 1
        assert await connection.request(16) == 16
        counts = await asyncio.wait_for(
            asyncio.gather(*[connection.request(n) for n in (1, 16, 1, 16, 5)]), 5
        )
        assert counts == [1, 16, 1, 16, 5]
    finally:
        await connection.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("mode", "num_streams"), [("unary", None), ("mux", 2), ("framed", 2)])
async def test_a_short_run_of_every_mode_measures(
    server: tuple[Any, int], mode: str, num_streams: int | None
) -> None:
    ports, pid = server
    spec = bench.RunSpec(mode, num_streams, concurrency=4, num_messages=16)
    result = await bench.run_once(spec, ports, pid, seconds=0.4, warmup_s=0.1)
    assert result.requests_per_s > 10
    assert result.client_us_per_request > 0
    assert result.server_us_per_request > 0


@pytest.mark.asyncio
async def test_a_dead_server_ends_the_connection() -> None:
    process, ports = bench.start_server()
    connection = await bench.FramedConnection.open(ports.framed)
    try:
        process.kill()
        process.wait()
        with pytest.raises(bench.StreamEndedError):
            await asyncio.wait_for(connection.request(1), 5)
    finally:
        await connection.close()

"""bench/http_front_cost.py: its servers answer what its client checks, and the check
counts a broken reply as a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support.bench_scripts import load_bench_script

bench = load_bench_script("http_front_cost")

# granian is no dependency of the project: its modes are tested only where installed.
MODES = bench.available_modes()


def _reply(num_chunks: int) -> bytes:
    return b"".join(bench.sse_chunk("m", index) for index in range(num_chunks)) + (
        b"data: [DONE]\n\n"
    )


def test_a_complete_reply_verifies() -> None:
    assert bench.verify_response(200, "text/event-stream", _reply(3), 3) is None
    assert bench.verify_response(200, "text/event-stream", _reply(1), 1) is None


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected_error"),
    [
        (200, "text/event-stream", _reply(3)[: -len(b"data: [DONE]\n\n")], "does not end"),
        (200, "text/event-stream", _reply(3)[:-2], "does not end"),
        (200, "text/event-stream", _reply(2), "2 chunks, not 3"),
        (200, "text/event-stream", _reply(4), "4 chunks, not 3"),
        (200, "application/json", _reply(3), "content type"),
        (500, "text/event-stream", _reply(3), "status 500"),
        (200, "text/event-stream", b"data: x\n\n" * 3 + b"data: [DONE]\n\n", "not a JSON"),
        (200, "text/event-stream", b"", "does not end"),
    ],
)
def test_a_broken_reply_is_a_failure(
    status: int, content_type: str, body: bytes, expected_error: str
) -> None:
    error = bench.verify_response(status, content_type, body, 3)
    assert error is not None and expected_error in error


def test_the_endpoint_reads_what_the_client_sends() -> None:
    assert bench.parse_request(bench.request_body(16)) == ("bench-model", 16)
    assert 250 < len(bench.request_body(16)) < 350
    assert 90 < len(bench.sse_chunk("bench-model", 9)) - len(b"data: \n\n") < 120
    with pytest.raises(ValueError):
        bench.parse_request(b'{"model": "m", "max_tokens": 2}')  # not streamed


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, int]]:
    """(mode, port, pid) of a `--serve mode` subprocess."""
    process, port = bench.start_server(request.param)
    yield request.param, port, process.pid
    process.kill()
    process.wait()


@pytest.mark.asyncio
async def test_a_short_run_verifies_every_reply_and_measures(
    server: tuple[str, int, int],
) -> None:
    mode, port, pid = server
    spec = bench.RunSpec(mode, concurrency=4, num_chunks=3)
    result = await bench.run_once(spec, port, pid, seconds=0.6, warmup_s=0.2)
    assert (result.num_failed, result.first_error) == (0, None)
    assert result.requests_per_s > 10
    assert result.server_us_per_request > 0
    assert result.client_us_per_request > 0
    assert 0 < result.first_chunk_p50_ms <= result.first_chunk_p99_ms


@pytest.fixture
def dead_port() -> int:
    """The port an aiohttp server listened on before it was killed."""
    process, port = bench.start_server("aiohttp")
    process.kill()
    process.wait()
    return int(port)


@pytest.mark.asyncio
async def test_a_dead_server_counts_failures(dead_port: int) -> None:
    spec = bench.RunSpec("aiohttp", concurrency=2, num_chunks=1)
    # This process stands in for the server in the CPU readings.
    result = await bench.run_once(spec, dead_port, os.getpid(), seconds=0.2, warmup_s=0.1)
    assert result.num_failed > 0 and result.first_error is not None
    assert result.requests_per_s == 0

"""What a hostile or broken client does to an HTTP listener, and how to see the effect:
long prompts, /health latency meanwhile, prompts the tokenizer was asked to encode, raw
bytes on a socket (a head or a body that never ends) and connections held open."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

from triskel.common.tokenizer import MockTokenizer

T = TypeVar("T")

# A 24 MB prompt (2,000,000 × 12 characters): the size that blocked /health for 6.4 s.
HUGE_PROMPT = "hello world " * 2_000_000
# 1,000,000 one-character tokens ("!" is a token of its own): under the length bound of
# a 131,072-token context window (1,048,568 characters), so the mock tokenizer encodes
# all of it (most of a second) before it is refused for its token count.
SLOW_PROMPT = "!" * 1_000_000


async def slowest_reply_s(url: str, until: Awaitable[T]) -> tuple[float, T]:
    """Polls GET `url` until `until` is done; the slowest reply in seconds (each must be
    a 200), and what `until` returned.

    The polls come from another thread: a client on the server's own event loop would
    stall with it and never see the stall.
    """
    done = threading.Event()
    poller = asyncio.ensure_future(asyncio.to_thread(_poll, url, done))
    try:
        result = await until
    finally:
        done.set()
    return await poller, result


def _poll(url: str, done: threading.Event) -> float:
    slowest_s = 0.0
    while not done.is_set():
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
            reply.read()
        slowest_s = max(slowest_s, time.perf_counter() - started)
        done.wait(0.01)
    return slowest_s


def record_encoded_lengths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text the mock tokenizer encodes from now on (every instance)."""
    lengths: list[int] = []
    encode: Callable[[MockTokenizer, str], list[int]] = MockTokenizer.encode

    def recording_encode(self: MockTokenizer, text: str) -> list[int]:
        lengths.append(len(text))
        return encode(self, text)

    monkeypatch.setattr(MockTokenizer, "encode", recording_encode)
    return lengths


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """What a listener sent back on one raw connection, and when (inf: never)."""

    data: bytes
    replied_after_s: float
    closed_after_s: float


async def raw_exchange(port: int, request: bytes, deadline_s: float = 3.0) -> RawAnswer:
    """Sends `request` bytes on a new connection to 127.0.0.1:`port` and reads until the
    listener closes it or `deadline_s` passes."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    data = b""
    replied_after_s = closed_after_s = math.inf
    writer.write(request)
    try:
        async with asyncio.timeout(deadline_s):
            while chunk := await reader.read(65536):
                if not data:
                    replied_after_s = loop.time() - started
                data += chunk
            closed_after_s = loop.time() - started
    except TimeoutError:
        pass  # still open at the deadline
    except ConnectionResetError:
        closed_after_s = loop.time() - started
    finally:
        writer.close()
    return RawAnswer(data, replied_after_s, closed_after_s)


class KeptConnection:
    """One keep-alive connection that asks for /health, a request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def get_health(self) -> int:
        """The status of one GET /health on this connection."""
        self._writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        await self._reader.readexactly(length)
        return int(lines[0].split()[1])

    def close(self) -> None:
        self._writer.close()


@contextlib.asynccontextmanager
async def kept_connections(port: int, count: int) -> AsyncIterator[list[KeptConnection]]:
    """`count` connections the listener has each served once and keeps open."""
    kept: list[KeptConnection] = []
    try:
        for _ in range(count):
            kept.append(KeptConnection(*await asyncio.open_connection("127.0.0.1", port)))
            assert await kept[-1].get_health() == 200
        yield kept
    finally:
        for connection in kept:
            connection.close()


async def wait_until_served(port: int, timeout_s: float = 5.0) -> None:
    """Waits until a new connection's GET /health is answered 200."""
    async with asyncio.timeout(timeout_s):
        while True:
            answer = await raw_exchange(port, _HEALTH, 1.0)
            if answer.data.startswith(b"HTTP/1.1 200 "):
                return
            await asyncio.sleep(0.01)


# A request head that never ends, and a body 87 bytes short of its Content-Length.
UNFINISHED_HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n"
STALLED_BODY = (
    b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"model": "m"'
)
_HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


async def expect_an_unfinished_head_closed(port: int, within_s: float) -> None:
    answer = await raw_exchange(port, UNFINISHED_HEAD)
    assert answer.data == b"" and answer.closed_after_s < within_s, answer


async def expect_a_stalled_body_answered_408(
    port: int, idle_timeout_s: float, within_s: float
) -> None:
    answer = await raw_exchange(port, STALLED_BODY, deadline_s=within_s)
    assert answer.data.startswith(b"HTTP/1.1 408 "), answer
    assert b'"param":"body"' in answer.data
    assert f"nothing for {idle_timeout_s:g} s after 13 bytes".encode() in answer.data
    assert answer.replied_after_s < within_s


async def expect_connections_beyond_the_cap_refused(port: int, max_connections: int) -> None:
    """With `max_connections` open, one more is refused at once; the open ones are still
    served, and once they close a new one is served too."""
    async with kept_connections(port, max_connections) as kept:
        refused = await raw_exchange(port, _HEALTH)
        assert refused.data.startswith(b"HTTP/1.1 503 ") and refused.closed_after_s < 1.0
        assert b"Retry-After: 1" in refused.data
        assert f"{max_connections} connections open".encode() in refused.data
        assert [await connection.get_health() for connection in kept] == [200] * max_connections
    await wait_until_served(port)


# Requests the listener must refuse as the client's fault: a body that is not the gzip
# it claims, a header without a colon, broken chunked framing, a request line of junk.
MALFORMED_REQUESTS = (
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
    b"Content-Length: 10\r\n\r\nnot gzip!!",
    b"GET /health HTTP/1.1\r\nHost x\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GARBAGE\r\n\r\n",
)


async def expect_malformed_requests_refused_quietly(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Each malformed request is a 400 and leaves at most one DEBUG line, no traceback;
    the bad gzip body's 400 names Content-Encoding."""
    with caplog.at_level(logging.DEBUG):
        answers = [await raw_exchange(port, request) for request in MALFORMED_REQUESTS]
    for answer in answers:
        assert answer.data.split(b" ", 2)[1] == b"400", answer
    assert b'"param":"Content-Encoding"' in answers[0].data
    assert b"not valid gzip data" in answers[0].data
    logged = [r for r in caplog.records if r.name.startswith(("aiohttp", "triskel"))]
    assert len(logged) <= len(MALFORMED_REQUESTS), [r.getMessage() for r in logged]
    assert all(r.levelno == logging.DEBUG and r.exc_info is None for r in logged)
    assert "Traceback" not in caplog.text

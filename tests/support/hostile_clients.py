"""What a hostile or broken client does to an HTTP listener, and how to see the effect:
long prompts, /health latency meanwhile, and prompts the tokenizer was asked to encode."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
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

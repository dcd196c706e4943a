"""SGLang-style P/D rooms: where a prefill worker leaves a prompt's KV for its decode worker.

A P/D router sends the same request to a prefill and a decode worker at once, both
with the same random `bootstrap_room`. The prefill worker publishes what its prefill
produced under that room; the decode worker long-polls the prefill worker's bootstrap
listener for it. Either side may come first:

    decode:  wait(room) ────────────── blocks ──────────┐
    prefill:            engine.prefill → publish(room) ─┴─► the decode gets the entry

A room is forgotten `ttl_s` after it was published (the KV hold time: after that the
KV is gone anyway), or as soon as nobody waits for a room nobody published.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from triskel.workers.openai_http.errors import Json

_log = logging.getLogger(__name__)


class RoomFailed(Exception):
    """The prefill for this room failed (or the prefill worker is stopping); says why.

    `status` and `param` are the prefill worker's own HTTP answer: a 400 naming a field
    reaches the decode worker's client as that same 400.
    """

    def __init__(self, message: str, status: int = 502, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param


@dataclass(frozen=True, slots=True)
class PublishedPrefill:
    """What a decode worker needs from a room: the prefill's first token and KV handle."""

    num_prompt_tokens: int
    first_token_id: int
    num_cached_tokens: int
    # Set when the first token already finished the request (no KV is kept).
    finish_reason: str | None
    # The vLLM-style handle (`pd_vllm.kv_transfer_params_json`); None with finish_reason.
    kv_transfer_params: Json | None

    def json(self) -> Json:
        return {
            "num_prompt_tokens": self.num_prompt_tokens,
            "first_token_id": self.first_token_id,
            "num_cached_tokens": self.num_cached_tokens,
            "finish_reason": self.finish_reason,
            "kv_transfer_params": self.kv_transfer_params,
        }

    @classmethod
    def from_json(cls, value: object) -> PublishedPrefill:
        """ValueError naming the field when `value` is not a published room."""
        if not isinstance(value, dict):
            raise ValueError("the room is not a JSON object")
        counts = {}
        for name in ("num_prompt_tokens", "first_token_id", "num_cached_tokens"):
            count = value.get(name)
            if type(count) is not int or count < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {count!r}")
            counts[name] = count
        finish_reason = value.get("finish_reason")
        kv = value.get("kv_transfer_params")
        if not isinstance(finish_reason, str | None) or not isinstance(kv, dict | None):
            raise ValueError("finish_reason must be a string or null, kv_transfer_params an object")
        if (finish_reason is None) == (kv is None):
            raise ValueError("a room holds either kv_transfer_params or a finish_reason")
        return cls(finish_reason=finish_reason, kv_transfer_params=kv, **counts)


class _Room:
    __slots__ = ("expiry", "outcome", "waiters")

    def __init__(self) -> None:
        self.outcome: asyncio.Future[PublishedPrefill] = asyncio.get_running_loop().create_future()
        self.waiters = 0
        self.expiry: asyncio.TimerHandle | None = None


class BootstrapRooms:
    """Rooms by number. Use from one event loop; every method is non-blocking but `wait`."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._rooms: dict[int, _Room] = {}
        self._closed_reason = ""

    def __len__(self) -> int:
        return len(self._rooms)

    def publish(self, room: int, prefill: PublishedPrefill) -> None:
        self._settle(room, prefill)

    def fail(self, room: int, failure: RoomFailed) -> None:
        self._settle(room, failure)

    async def wait(self, room: int, timeout_s: float) -> PublishedPrefill:
        """The room's prefill; TimeoutError after `timeout_s`, RoomFailed if it failed."""
        if self._closed_reason:
            raise RoomFailed(self._closed_reason)
        entry = self._rooms.get(room) or self._open(room)
        entry.waiters += 1
        try:
            async with asyncio.timeout(timeout_s):
                # shield: one waiter giving up must not cancel the room for the others.
                return await asyncio.shield(entry.outcome)
        finally:
            entry.waiters -= 1
            if entry.waiters == 0 and not entry.outcome.done():
                self._forget(room, entry)

    def close(self, reason: str) -> None:
        """Fail every room still waited for with `reason`; later calls to `wait` too."""
        self._closed_reason = reason
        for room, entry in list(self._rooms.items()):
            if not entry.outcome.done():
                entry.outcome.set_exception(RoomFailed(reason))
            self._forget(room, entry)

    def _open(self, room: int) -> _Room:
        entry = _Room()
        self._rooms[room] = entry
        return entry

    def _settle(self, room: int, outcome: PublishedPrefill | RoomFailed) -> None:
        if self._closed_reason:
            return
        entry = self._rooms.get(room)
        if entry is None or entry.outcome.done():
            if entry is not None:
                # Rooms are random 64-bit numbers: a reuse is a retried request.
                _log.warning("bootstrap room %d published again; the newer prefill wins", room)
                self._forget(room, entry)
            entry = self._open(room)
        if isinstance(outcome, PublishedPrefill):
            entry.outcome.set_result(outcome)
        else:
            entry.outcome.set_exception(outcome)
            # Retrieved here: a failure nobody waits for is not an "unretrieved" error.
            entry.outcome.exception()
        entry.expiry = asyncio.get_running_loop().call_later(self._ttl_s, self._expire, room, entry)

    def _expire(self, room: int, entry: _Room) -> None:
        if self._rooms.get(room) is entry:
            del self._rooms[room]

    def _forget(self, room: int, entry: _Room) -> None:
        if entry.expiry is not None:
            entry.expiry.cancel()
        if self._rooms.get(room) is entry:
            del self._rooms[room]

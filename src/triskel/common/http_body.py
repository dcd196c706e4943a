"""Reads a request body within a size and an idle time, for the router's HTTP front and a
worker's HTTP API alike.

aiohttp bounds a body's size (`client_max_size`) but not its time: a client that sends
less than its `Content-Length` holds the handler forever. Here each chunk must arrive
within the listener's `body_idle_timeout_s` (nginx's `client_body_timeout` works the same
way), so a slow but steady upload of a large body still gets through.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from triskel.common.http_listener import HTTP_LIMITS, HttpLimits


class BodyReadError(Exception):
    """The body could not be read; `status` is the HTTP status to answer (400, 408)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body; BodyReadError when it is over `max_bytes` (refused by its
    Content-Length before a byte is read) or pauses for longer than allowed."""
    if (request.content_length or 0) > max_bytes:
        raise _too_large(max_bytes)
    idle_timeout_s = request.app.get(HTTP_LIMITS, _DEFAULT_LIMITS).body_idle_timeout_s
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(idle_timeout_s):
                chunk = await request.content.readany()
        except TimeoutError:
            raise BodyReadError(
                408,
                f"stopped arriving: nothing for {idle_timeout_s:g} s after {len(body)} bytes",
            ) from None
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)


_DEFAULT_LIMITS = HttpLimits()


def _too_large(max_bytes: int) -> BodyReadError:
    return BodyReadError(400, f"is larger than the {max_bytes}-byte limit")

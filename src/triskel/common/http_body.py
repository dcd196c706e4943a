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
from aiohttp.http_exceptions import ContentEncodingError

from triskel.common.http_listener import HTTP_LIMITS, HttpLimits


class BodyReadError(Exception):
    """The body could not be read; `status` is the HTTP status to answer (400, 408),
    `field_name` what to blame: `body`, or the `Content-Encoding` header."""

    def __init__(self, status: int, message: str, field_name: str = "body") -> None:
        super().__init__(f"{field_name}: {message}")
        self.status = status
        self.message = message
        self.field_name = field_name


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body; BodyReadError when it is over `max_bytes` (refused by its
    Content-Length before a byte is read), pauses for longer than allowed, or cannot be
    decoded (a bad gzip body, broken chunked framing)."""
    if (request.content_length or 0) > max_bytes:
        raise _too_large(max_bytes)
    content = request.content
    idle_timeout_s = request.app.get(HTTP_LIMITS, _DEFAULT_LIMITS).body_idle_timeout_s
    body = bytearray()
    while True:
        try:
            if content.is_eof():  # the rest is here already (a small body, usually)
                chunk = content.read_nowait()
            else:
                async with asyncio.timeout(idle_timeout_s):
                    chunk = await content.readany()
        except TimeoutError:
            raise BodyReadError(
                408,
                f"stopped arriving: nothing for {idle_timeout_s:g} s after {len(body)} bytes",
            ) from None
        except web.RequestPayloadError as error:
            raise _malformed(request, error) from None
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)


_DEFAULT_LIMITS = HttpLimits()


def _malformed(request: web.Request, error: web.RequestPayloadError) -> BodyReadError:
    if isinstance(error.__cause__, ContentEncodingError):
        encoding = request.headers.get("Content-Encoding", "")
        return BodyReadError(
            400, f"the body is not valid {encoding} data", field_name="Content-Encoding"
        )
    return BodyReadError(400, "is malformed (its framing is broken)")


def _too_large(max_bytes: int) -> BodyReadError:
    return BodyReadError(400, f"is larger than the {max_bytes}-byte limit")

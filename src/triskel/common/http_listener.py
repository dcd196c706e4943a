"""An aiohttp app on a TCP listener with the limits a listener open to any client needs:
the router's HTTP front and a worker's HTTP API both serve this way.

Like Envoy's listener settings, each bound is cheap and holds whatever the client sends:

- header_timeout_s: aiohttp's `keepalive_timeout`. aiohttp arms it when a connection
  opens and again after each response, and closes the connection if no complete request
  head has arrived by then; so it bounds a slowloris head and an idle keep-alive alike.
- body_idle_timeout_s: aiohttp has no body timeout; `triskel.common.http_body` reads
  bodies under this one (a 408 when the body stops arriving).
- max_connections: aiohttp has no connection cap either; the listener answers each
  connection beyond it with a 503 and closes it, while the open ones are served.

A malformed request (a bad request line or header, broken chunked framing, a body that
is not the gzip it claims) is the client's fault: aiohttp answers it 400 but logs an
ERROR with a traceback, so any client could flood the log. The listener's logger turns
each such record into one DEBUG line, dropped unless DEBUG is on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import Field

from triskel.common.api import ApiModel


class HttpLimits(ApiModel):
    header_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds a connection may take to send a request's head, from opening or from the
    last response; also how long an idle keep-alive connection stays open."""
    body_idle_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds a request body may pause before the request is answered 408."""
    max_connections: int = Field(default=8192, gt=0)
    """Open connections at most; more are answered 503 and closed (admission's defaults
    run 1,024 requests and queue 4,096, so these have room)."""


# Where the apps' body readers find the limits they are served under.
HTTP_LIMITS = web.AppKey("http_limits", HttpLimits)

# A refused connection's client has this long to read the 503 and close its end.
_REFUSAL_LINGER_S = 1.0


async def start_http_listener(
    app: web.Application,
    host: str,
    port: int,
    limits: HttpLimits,
    shutdown_timeout_s: float = 60.0,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> tuple[web.AppRunner, int]:
    """Serves `app` on host:port (0: a free one) under `limits`, over TLS with
    `ssl_context` (triskel.common.tls); the runner (its `cleanup()` stops the
    listener) and the bound port. `reuse_port`: SO_REUSEPORT, the port shared with
    other processes that set it too (a router's sibling processes). An IPv6 host may
    come bracketed, as addresses write it ("[::1]")."""
    app[HTTP_LIMITS] = limits
    # handler_cancellation: a client that leaves mid-request cancels the request too.
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout_s,
        keepalive_timeout=limits.header_timeout_s,
        logger=_PROTOCOL_LOG,
    )
    await runner.setup()
    # A socket takes the bare IPv6 host; "[::1]" would be looked up as a name.
    site = _CappedTcpSite(runner, host.strip("[]"), port, limits, ssl_context, reuse_port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site.bound_port


class _MalformedRequestsInOneLine(logging.Filter):
    """aiohttp's record of a request it refused as malformed, as one DEBUG line without
    the traceback; other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        cause = error.__cause__ if error is not None else None
        if not any(isinstance(e, HttpProcessingError) for e in (error, cause)):
            return True
        if not _PROTOCOL_LOG.isEnabledFor(logging.DEBUG):
            return False
        record.msg = "malformed request refused: %s"
        record.args = (" ".join(str(error).split()),)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_PROTOCOL_LOG = logging.getLogger(__name__ + ".protocol")
_PROTOCOL_LOG.addFilter(_MalformedRequestsInOneLine())


class _CappedTcpSite(web.BaseSite):
    """aiohttp's TCPSite, but a connection beyond `max_connections` gets `_Refusal`
    instead of a request handler."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        limits: HttpLimits,
        ssl_context: ssl.SSLContext | None,
        reuse_port: bool = False,
    ):
        super().__init__(runner)
        self._reuse_port = reuse_port
        self._app_runner = runner
        self._host = host
        self._port = port
        self._max_connections = limits.max_connections
        self._header_timeout_s = limits.header_timeout_s
        self._ssl_context = ssl_context
        self.bound_port = port

    @property
    def name(self) -> str:
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        server = self._app_runner.server
        assert server is not None  # set up before a site is made

        def protocol() -> asyncio.Protocol:
            if len(server.connections) >= self._max_connections:
                return _Refusal(self._max_connections)
            return server()

        loop = asyncio.get_running_loop()
        # A TLS handshake is part of the request head: bounded by the same timeout.
        handshake_timeout_s = None if self._ssl_context is None else self._header_timeout_s
        self._server = await loop.create_server(
            protocol,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=handshake_timeout_s,
            reuse_port=self._reuse_port or None,
        )
        self.bound_port = self._server.sockets[0].getsockname()[1]


class _Refusal(asyncio.Protocol):
    """Answers 503 at once, then half-closes and gives the client a moment to read it and
    close (closing outright could reset the connection before the 503 is read)."""

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._abort: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_refusal_response(self._max_connections))
        transport.write_eof()
        self._abort = asyncio.get_running_loop().call_later(_REFUSAL_LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        pass  # the request it will not serve

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abort is not None:
            self._abort.cancel()


def _refusal_response(max_connections: int) -> bytes:
    message = (
        f"the server has {max_connections} connections open, its limit; "
        "retry shortly, or reuse a connection"
    )
    body = orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "service_unavailable",
                "param": None,
                "code": 503,
            }
        }
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body

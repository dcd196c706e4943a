"""`GET /metrics` on a listener of its own: the operator's `--metrics-address`, and the
router's, which then no longer serves it on its API port (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

# The exposition body and its content type (prometheus_client's generate_latest and
# CONTENT_TYPE_LATEST).
Render = Callable[[], tuple[bytes, str]]


class MetricsListener:
    """`GET /metrics`, and nothing else, on `address` (host:port; port 0 picks one)."""

    def __init__(self, render: Render) -> None:
        self._render = render
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        self.address: str | None = None  # host:port once started

    async def start(self, address: str) -> str:
        """Listens on `address`; the bound host:port. OSError when it is taken."""
        host, _, port = address.rpartition(":")
        await self._runner.setup()
        try:
            site = web.TCPSite(self._runner, host.strip("[]") or None, int(port))
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        bound_host, bound_port = self._runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.address = f"{shown}:{bound_port}"
        return self.address

    async def stop(self) -> None:
        """Stops serving; nothing to do when never started."""
        if self.address is not None:
            await self._runner.cleanup()
            self.address = None

    async def _serve(self, _request: web.Request) -> web.Response:
        body, content_type = self._render()
        return web.Response(body=body, headers={"Content-Type": content_type})

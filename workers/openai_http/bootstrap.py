"""The SGLang-style bootstrap listener (prefill side) and its client (decode side).

    GET /triskel/bootstrap/rooms/{room}?wait_s=S      a long poll
      200  the room's `PublishedPrefill` as JSON, once the prefill published it
      504  S seconds passed first (the client polls again while its own bound lasts)
      502  the prefill failed, or the worker is stopping; the message says why

The decode worker's `BootstrapClient.fetch` turns every way this can go wrong into an
`ApiError` naming the bootstrap host:port: unreachable or dropped (the prefill worker
died) → 502, its wait bound exceeded → 504, a failed prefill → 502 with its reason.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web

from triskel.workers.openai_http.errors import ApiError
from triskel.workers.openai_http.requests import BootstrapParams
from triskel.workers.openai_http.rooms import BootstrapRooms, PublishedPrefill, RoomFailed

ROOM_PATH = "/triskel/bootstrap/rooms/{room}"
# One long poll's longest wait; a client with a longer bound polls again.
MAX_POLL_WAIT_S = 60.0
# Slack for the HTTP round trip on top of the server-side wait.
_ROUND_TRIP_SLACK_S = 5.0


def build_bootstrap_app(rooms: BootstrapRooms) -> web.Application:
    """The prefill worker's bootstrap listener over `rooms`."""

    async def get_room(request: web.Request) -> web.Response:
        room = request.match_info["room"]
        if not room.isdigit() or int(room) >= 2**64:
            return _error(400, f"room: {room!r} is not an integer in [0, 2^64)")
        try:
            wait_s = float(request.query.get("wait_s", "0"))
        except ValueError:
            wait_s = -1.0
        if not (0 <= wait_s <= MAX_POLL_WAIT_S):
            return _error(400, f"wait_s: must be a number of seconds in [0, {MAX_POLL_WAIT_S}]")
        try:
            prefill = await rooms.wait(int(room), wait_s)
        except TimeoutError:
            return _error(504, f"room {room} was not published within {wait_s:g} s")
        except RoomFailed as error:
            reply = ApiError(502, f"the prefill of room {room} failed: {error.message}").json()
            # The prefill worker's own answer, for the decode worker to pass on.
            reply["prefill_error"] = {
                "status": error.status,
                "param": error.param,
                "message": error.message,
            }
            return web.Response(
                status=502, body=orjson.dumps(reply), content_type="application/json"
            )
        return web.Response(body=orjson.dumps(prefill.json()), content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get(ROOM_PATH, get_room)
    app.router.add_get("/health", health)
    return app


def _error(status: int, message: str) -> web.Response:
    body = ApiError(status, message).json()
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


class BootstrapClient:
    """Fetches rooms from prefill workers' bootstrap listeners, each within `wait_s`."""

    def __init__(self, wait_s: float) -> None:
        self._wait_s = wait_s
        # Opened on first use: only decode workers in SGLang-style P/D ever need it.
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, bootstrap: BootstrapParams) -> PublishedPrefill:
        where = f"bootstrap server {bootstrap.address} (bootstrap_host:bootstrap_port)"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while (remaining_s := deadline - loop.time()) > 0:
            poll_s = min(remaining_s, MAX_POLL_WAIT_S)
            url = f"http://{bootstrap.address}{ROOM_PATH.format(room=bootstrap.room)}"
            timeout = aiohttp.ClientTimeout(total=poll_s + _ROUND_TRIP_SLACK_S)
            if self._session is None:
                self._session = aiohttp.ClientSession()
            try:
                async with self._session.get(
                    url, params={"wait_s": f"{poll_s:.3f}"}, timeout=timeout
                ) as reply:
                    body = await reply.read()
                    status = reply.status
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                raise ApiError(
                    502,
                    f"{where} is unreachable or dropped the connection while room "
                    f"{bootstrap.room} was awaited (the prefill worker may have died): {error!r}",
                ) from error
            if status == 200:
                return self._published(body, where)
            if status != 504:
                raise _failure(status, body, where)
        raise ApiError(
            504,
            f"the prefill worker did not publish bootstrap room {bootstrap.room} at {where} "
            f"within {self._wait_s:g} s",
        )

    @staticmethod
    def _published(body: bytes, where: str) -> PublishedPrefill:
        try:
            return PublishedPrefill.from_json(orjson.loads(body))
        except ValueError as error:  # orjson.JSONDecodeError is one
            raise ApiError(502, f"{where} sent a malformed room: {error}") from error


def _failure(status: int, body: bytes, where: str) -> ApiError:
    """The decode worker's answer when the bootstrap server reports a failure: the prefill
    worker's own 4xx (the request is bad on both), else a 502 with the reason."""
    try:
        reply = orjson.loads(body)
        message = str(reply["error"]["message"])
        prefill = reply.get("prefill_error") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiError(502, f"{where} answered {status}: {body[:200].decode(errors='replace')}")
    prefill_status, param = prefill.get("status"), prefill.get("param")
    if type(prefill_status) is int and 400 <= prefill_status < 500:
        refused = f"the prefill worker refused the request: {prefill.get('message')}"
        return ApiError(prefill_status, refused, param if isinstance(param, str) else None)
    return ApiError(502, f"{where} answered {status}: {message}")

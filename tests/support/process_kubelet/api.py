"""The process kubelet's own calls to the API server: plain aiohttp, typed.

The repository's `KubeClient` knows only the kinds the operator writes; a kubelet
also creates Nodes, Leases and Bindings, deletes with a body (grace period 0 and a
uid precondition) and watches, so it gets this small client of its own.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

Json = dict[str, Any]


class ApiError(Exception):
    """The API server answered `status` (with its Status `reason` when it sent one)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


@dataclass(frozen=True, slots=True)
class ApiLogin:
    """Where the API server is and the bearer token the kubelet calls it with."""

    server: str  # https://127.0.0.1:PORT
    token: str
    ca_path: Path


class ApiClient:
    """Calls to one API server; `close()` when done. Paths are REST paths (`/api/v1/...`)."""

    def __init__(self, login: ApiLogin) -> None:
        context = ssl.create_default_context(cafile=str(login.ca_path))
        self._session = aiohttp.ClientSession(
            base_url=login.server,
            headers={"Authorization": f"Bearer {login.token}", "Accept": "application/json"},
            connector=aiohttp.TCPConnector(ssl=context),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self._session.close()

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Json | None:
        """The object at `path`, None when it does not exist."""
        async with self._session.get(path, params=params) as response:
            if response.status == 404:
                return None
            return await _body(response)

    async def post(self, path: str, body: Json) -> Json:
        async with self._session.post(path, json=body) as response:
            return await _body(response)

    async def merge_patch(self, path: str, patch: Json) -> Json:
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self._session.patch(path, json=patch, headers=headers) as response:
            return await _body(response)

    async def delete(self, path: str, options: Json | None = None) -> bool:
        """Deletes with DeleteOptions `options`; False when the object was already gone."""
        async with self._session.delete(path, json=options) as response:
            if response.status == 404:
                return False
            await _body(response)
            return True

    async def watch(
        self, path: str, params: Mapping[str, str], resource_version: str
    ) -> AsyncIterator[tuple[str, Json]]:
        """(type, object) events after `resource_version` until the server ends the watch.

        WatchExpired when that version is too old to watch from."""
        query = {
            **params,
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            # The server ends the watch after this; the caller watches again from
            # the last version seen, so nothing is missed.
            "timeoutSeconds": "300",
        }
        no_timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._session.get(path, params=query, timeout=no_timeout) as response:
            if response.status == 410:
                raise WatchExpired(path)
            if response.status >= 400:
                await _body(response)
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    # A Status inside the stream: 410 means too old, as above.
                    if event["object"].get("code") == 410:
                        raise WatchExpired(path)
                    raise ApiError(
                        int(event["object"].get("code", 500)),
                        str(event["object"].get("reason", "")),
                        str(event["object"].get("message", "")),
                    )
                yield event["type"], event["object"]


async def _body(response: aiohttp.ClientResponse) -> Json:
    if response.status >= 400:
        text = await response.text()
        try:
            status = json.loads(text)
        except ValueError:
            status = {}
        if not isinstance(status, dict):
            status = {}
        raise ApiError(
            response.status, str(status.get("reason", "")), str(status.get("message", text))
        )
    body: Json = await response.json(content_type=None)
    return body

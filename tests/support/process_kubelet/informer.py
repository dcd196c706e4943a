"""List, then watch, one collection for as long as the kubelet runs.

Every object is handed over as ("ADDED" | "MODIFIED" | "DELETED", object). When a
watch breaks or expires, the collection is listed again; objects that vanished in
the gap are handed over as DELETED, so a consumer never keeps a pod the server forgot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from .api import ApiClient, ApiError, Json, WatchExpired

Handler = Callable[[str, Json], Awaitable[None]]

log = logging.getLogger(__name__)
# After a failed list or watch: the server restarts or is busy; retry soon, not hot.
_RETRY_S = 0.5


async def follow(
    api: ApiClient,
    path: str,
    params: Mapping[str, str],
    handle: Handler,
    synced: asyncio.Event | None = None,
) -> None:
    """Feeds every change of the collection at `path` to `handle`, until cancelled.

    `synced` is set once the first list has been handed over."""
    known: dict[str, Json] = {}
    while True:
        try:
            listed = await api.get(path, params)
            if listed is None:
                raise ApiError(404, "NotFound", path)
            items: list[Json] = listed.get("items", [])
            current = {item["metadata"]["uid"]: item for item in items}
            for uid in [uid for uid in known if uid not in current]:
                await handle("DELETED", known.pop(uid))
            for uid, item in current.items():
                await handle("MODIFIED" if uid in known else "ADDED", item)
                known[uid] = item
            if synced is not None:
                synced.set()
            version = str(listed["metadata"]["resourceVersion"])
            while True:  # watch again from the last version seen
                async for kind, obj in api.watch(path, params, version):
                    version = str(obj["metadata"].get("resourceVersion", version))
                    if kind == "BOOKMARK":
                        continue
                    uid = obj["metadata"]["uid"]
                    if kind == "DELETED":
                        known.pop(uid, None)
                    else:
                        known[uid] = obj
                    await handle(kind, obj)
        except WatchExpired:
            continue
        except (TimeoutError, ApiError, aiohttp.ClientError, ValueError) as error:
            log.warning("following %s: %s; listing again", path, error)
            await asyncio.sleep(_RETRY_S)

"""A pod's volumes as folders under the pod's own folder.

- `emptyDir` (any medium): an empty folder, gone with the pod.
- `configMap` and `secret`: one file per key (or per `items` entry, at its `path`,
  with its `mode`, else `defaultMode`, else 0644), written before the containers
  start and rewritten within about a second of the object changing (a kubelet takes
  up to a minute; tests should not wait that long). Each file is replaced atomically,
  so a reader sees the old content or the new, never half. A missing object holds
  the pod in ContainerCreating, as a kubelet does, unless the volume is `optional`:
  then the folder starts empty and fills when the object appears.

Other volume types raise Unsupported naming the volume.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .api import ApiClient, ApiError, Json
from .env import Unsupported

log = logging.getLogger(__name__)
REFRESH_S = 1.0
_DEFAULT_MODE = 0o644


class SourceMissing(Exception):
    """A volume's ConfigMap or Secret (or one of its keys) is not there yet."""


@dataclass(frozen=True, slots=True)
class ObjectVolume:
    """A volume filled from a ConfigMap or Secret."""

    name: str
    path: str  # REST path of the object
    items: tuple[Json, ...]
    default_mode: int
    optional: bool
    is_secret: bool


def _object_volume(namespace: str, volume: Json) -> ObjectVolume | None:
    for kind, plural, name_key in (
        ("configMap", "configmaps", "name"),
        ("secret", "secrets", "secretName"),
    ):
        source = volume.get(kind)
        if source is not None:
            return ObjectVolume(
                name=volume["name"],
                path=f"/api/v1/namespaces/{namespace}/{plural}/{source[name_key]}",
                items=tuple(source.get("items") or ()),
                default_mode=int(source.get("defaultMode", _DEFAULT_MODE)),
                optional=bool(source.get("optional", False)),
                is_secret=kind == "secret",
            )
    return None


def volume_files(volume: ObjectVolume, obj: Json | None) -> dict[str, tuple[bytes, int]]:
    """relative path -> (content, mode) the volume holds when its object is `obj`."""
    if obj is None:
        if volume.optional:
            return {}
        raise SourceMissing(f"volume {volume.name}: {volume.path} does not exist")
    if volume.is_secret:
        data = {key: base64.b64decode(value) for key, value in obj.get("data", {}).items()}
    else:
        data = {key: value.encode() for key, value in obj.get("data", {}).items()}
        data |= {key: base64.b64decode(v) for key, v in obj.get("binaryData", {}).items()}
    if not volume.items:
        return {key: (content, volume.default_mode) for key, content in data.items()}
    files = {}
    for item in volume.items:
        if item["key"] not in data:
            if volume.optional:
                continue
            raise SourceMissing(f"volume {volume.name}: {volume.path} has no key {item['key']}")
        files[item["path"]] = (data[item["key"]], int(item.get("mode", volume.default_mode)))
    return files


class PodVolumes:
    """The folders of one pod's volumes; `prepare()` before its containers start."""

    def __init__(self, pod: Json, root: Path, api: ApiClient) -> None:
        self._api = api
        self.folders: dict[str, Path] = {}
        self._filled: list[ObjectVolume] = []
        self._versions: dict[str, str] = {}  # volume -> resourceVersion written
        self._written: dict[str, set[str]] = {}  # volume -> files it holds
        for volume in pod["spec"].get("volumes", []):
            name = volume["name"]
            self.folders[name] = root / name
            filled = _object_volume(pod["metadata"]["namespace"], volume)
            if filled is not None:
                self._filled.append(filled)
            elif "emptyDir" not in volume:
                kind = sorted(key for key in volume if key != "name")
                raise Unsupported(f"volume {name}: type {kind} is not run by the process kubelet")

    async def prepare(self) -> None:
        """Creates every folder and fills each ConfigMap and Secret volume once.

        SourceMissing when a required object or key is missing (the caller retries)."""
        for folder in self.folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for volume in self._filled:
            await self._fill(volume)

    async def refresh_forever(self) -> None:
        """Rewrites volumes whose object changed, every REFRESH_S, until cancelled."""
        while True:
            await asyncio.sleep(REFRESH_S)
            for volume in self._filled:
                try:
                    await self._fill(volume)
                except SourceMissing as missing:
                    # A running pod keeps what it has, as a kubelet does.
                    log.info("%s; keeping the files written before", missing)
                except (TimeoutError, ApiError, aiohttp.ClientError) as error:
                    log.warning("volume %s: %s; trying again", volume.name, error)

    def remove(self) -> None:
        for folder in self.folders.values():
            shutil.rmtree(folder, ignore_errors=True)

    async def _fill(self, volume: ObjectVolume) -> None:
        obj = await self._api.get(volume.path)
        version = "" if obj is None else str(obj["metadata"]["resourceVersion"])
        if volume.name in self._versions and self._versions[volume.name] == version:
            return
        files = volume_files(volume, obj)
        folder = self.folders[volume.name]
        for relative, (content, mode) in files.items():
            _replace(folder / relative, content, mode)
        for stale in self._written.get(volume.name, set()) - set(files):
            (folder / stale).unlink(missing_ok=True)
        self._written[volume.name] = set(files)
        self._versions[volume.name] = version


def _replace(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == content:
        path.chmod(mode)
        return
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    os.chmod(temporary, mode)
    os.replace(temporary, path)

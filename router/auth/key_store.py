"""The API keys in force, re-read when their file changes.

A mounted Kubernetes Secret changes by swapping a symlink, so the file's identity
(device, inode) is watched along with its size and mtime: `os.stat` follows the link.
A valid new file replaces every key at once; an invalid one keeps the keys in force,
logs one ERROR line naming the field and is counted, until the file changes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from triskel.router.auth.keys_file import KeysFileError, KeyTable, hash_key, parse_keys_file
from triskel.router.auth.principal import Principal

_log = logging.getLogger(__name__)

POLL_INTERVAL_S = 2.0
# A keys file is a few lines per key; a larger file is a mistake (a wrong mount).
MAX_FILE_BYTES = 4 * 1024 * 1024

_Identity = tuple[int, int, int, int]  # device, inode, size, mtime (ns)
_MISSING: _Identity = (-1, -1, -1, -1)


class KeyStore:
    """Looks keys up by their hash; `on_reload(ok)` counts every reload tried."""

    def __init__(
        self,
        path: Path,
        on_reload: Callable[[bool], None] = lambda _ok: None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._path = path
        self._on_reload = on_reload
        self._poll_interval_s = poll_interval_s
        self._keys: KeyTable = {}
        self._seen: _Identity | None = None
        self._task: asyncio.Task[None] | None = None

    def load(self) -> None:
        """Reads the file once; KeysFileError naming the file and the field (start-up)."""
        identity = self._identity()
        self._keys = self._read()
        self._seen = identity

    def lookup(self, key: str) -> Principal | None:
        # The table is keyed by the hash: comparing hashes of secrets leaks nothing usable.
        return self._keys.get(hash_key(key))

    def refresh(self) -> bool:
        """Re-reads the file if it changed since the last look; True when keys were replaced."""
        try:
            identity = self._identity()
        except KeysFileError as error:
            return self._failed(_MISSING, error)
        if identity == self._seen:
            return False
        try:
            keys = self._read()
        except KeysFileError as error:
            return self._failed(identity, error)
        self._keys, self._seen = keys, identity
        self._on_reload(True)
        _log.info("API keys reloaded from %s: %d keys", self._path, len(keys))
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="triskel-auth-keys")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            self.refresh()

    def _failed(self, identity: _Identity, error: KeysFileError) -> bool:
        # Once per version of the file: a bad file left in place is not logged every poll.
        if identity != self._seen:
            self._seen = identity
            self._on_reload(False)
            _log.error("API keys not reloaded, the %d in force kept: %s", len(self._keys), error)
        return False

    def _identity(self) -> _Identity:
        try:
            stat = os.stat(self._path)
        except OSError as error:
            raise KeysFileError(f"{self._path}: cannot read: {error.strerror}") from None
        return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _read(self) -> KeyTable:
        try:
            with open(self._path, "rb") as file:
                raw = file.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise KeysFileError(f"{self._path}: cannot read: {error.strerror}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise KeysFileError(f"{self._path}: larger than {MAX_FILE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise KeysFileError(f"{self._path}: not UTF-8 text") from None
        return parse_keys_file(text, str(self._path))

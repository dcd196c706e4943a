"""A TLS identity's files watched for renewal, shared by SSLContexts and gRPC credentials.

    stamp the files (inode, mtime, size) ──changed?──► read and check the pair and CA
        ──ok──► they become `current`, and the caller loads them where it needs them
        └─bad──► `current` stays the last good pair; one ERROR line per bad version

The caller decides what "load" means (an SSLContext, gRPC credentials); this module
only says when there is something new and good to load.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from triskel.common.tls.files import (
    FilesStamp,
    KeyPair,
    TlsFileError,
    TlsFiles,
    TlsFlags,
    files_stamp,
    read_ca,
    read_key_pair,
)

log = logging.getLogger(__name__)

# How often the files are checked: a renewal is days ahead of expiry, so seconds are
# plenty, and a few stat calls cost nothing.
POLL_S = 5.0


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A checked key pair and the CA bundle read with it (None: no CA file)."""

    pair: KeyPair
    ca_pem: bytes | None


class WatchedTlsFiles:
    """The last good `TlsMaterial` of `files`, re-read when the files change.

    Construction reads and checks the files: TlsFileError (naming the flag) when they
    cannot be used. `read_if_changed` stamps the files at most every `min_interval_s`
    (0: at every call). Thread-safe: gRPC calls a server's fetcher from its threads.
    """

    def __init__(self, files: TlsFiles, flags: TlsFlags, min_interval_s: float = 0.0) -> None:
        self._files, self._flags, self._min_interval_s = files, flags, min_interval_s
        self._lock = threading.Lock()
        self._stamp: FilesStamp = files_stamp(files)
        self.current = self._read()
        self._next_check = time.monotonic() + min_interval_s
        self._failed_stamp: FilesStamp | None = None

    def read_if_changed(self) -> TlsMaterial | None:
        """The new material if the files changed and are usable now (it is then
        `current` too); None when they did not change, or changed to something bad."""
        with self._lock:
            now = time.monotonic()
            if now < self._next_check:
                return None
            self._next_check = now + self._min_interval_s
            stamp = files_stamp(self._files)
            if stamp == self._stamp:
                return None
            try:
                material = self._read()
            except TlsFileError as error:
                if stamp != self._failed_stamp:
                    log.error(
                        "TLS files changed but cannot be used, keeping the old ones: %s", error
                    )
                    self._failed_stamp = stamp
                return None
            self.current, self._stamp = material, stamp
            log.info("TLS certificate reloaded from %s", self._files.cert_file)
            return material

    def _read(self) -> TlsMaterial:
        return TlsMaterial(
            read_key_pair(self._files, self._flags), read_ca(self._files, self._flags)
        )

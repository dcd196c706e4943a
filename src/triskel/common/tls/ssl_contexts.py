"""One `ssl.SSLContext` per listener or client, its certificate reloaded in place.

aiohttp and asyncio take an SSLContext once, when a listener starts. A renewed
certificate (cert-manager, a rotated Secret) is loaded into that same context:

    every `poll_s`: the files changed and are good (watched.py)? ──► load the pair
        into the context: new handshakes present it, open connections keep the
        session they have (a bad version: the old pair stays, one ERROR line)

A CA file that changes is loaded too; OpenSSL only adds trust to a context, so a CA
removed from the file stays trusted until the process restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from triskel.common.tls.files import SERVER_FLAGS, TlsFiles, TlsFlags, load_key_pair
from triskel.common.tls.watched import POLL_S, WatchedTlsFiles


class ReloadingSslContext:
    """An SSLContext for a server (or, `server=False`, a client) kept in step with `files`.

    The context is checked and loaded at construction: TlsFileError (naming the flag)
    when the files cannot be used. `start` polls for changes until `aclose`.
    """

    def __init__(
        self,
        files: TlsFiles,
        flags: TlsFlags = SERVER_FLAGS,
        *,
        server: bool = True,
        check_hostname: bool = True,
        poll_s: float = POLL_S,
    ) -> None:
        self._poll_s = poll_s
        # The poll task paces the checks, so the watcher stamps at every call.
        self._watched = WatchedTlsFiles(files, flags)
        ca_pem = self._watched.current.ca_pem
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if ca_pem is not None:
            context.load_verify_locations(cadata=ca_pem.decode("ascii"))
        elif not server:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if server:
            context.verify_mode = ssl.CERT_REQUIRED if files.require_client_cert else ssl.CERT_NONE
        else:
            # Peers known by address only (pod IPs) are checked by their CA, not a name.
            context.check_hostname = check_hostname
            context.verify_mode = ssl.CERT_REQUIRED
        load_key_pair(context, self._watched.current.pair)
        self.context = context
        self._task: asyncio.Task[None] | None = None

    def reload_if_changed(self) -> bool:
        """Loads the files into the context if they changed and are usable; True if it
        loaded them. A bad pair is logged once and the context keeps the last good one."""
        material = self._watched.read_if_changed()
        if material is None:
            return False
        load_key_pair(self.context, material.pair)
        if material.ca_pem is not None:
            self.context.load_verify_locations(cadata=material.ca_pem.decode("ascii"))
        return True

    def start(self) -> None:
        """Polls the files every `poll_s` on the running loop until `aclose`."""
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="tls-reload")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            self.reload_if_changed()

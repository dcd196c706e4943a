"""TLS for gRPC servers and channels, following certificate renewals.

Servers: `grpc.dynamic_ssl_server_credentials`. gRPC asks the fetcher for a new
certificate configuration at each handshake; the fetcher stamps the files at most
every `poll_s` and hands over a new, checked pair when they changed (None: keep the
current one). Open connections keep theirs.

Channels: gRPC Python has no reloading channel credentials, and a channel keeps its
credentials for every reconnect. `GrpcClientTls.credentials()` returns the current
ones with a generation number that grows when the files change; a long-lived client
(the router's channel to a worker) compares it on each call and opens a new channel
when it grew, closing the old one once its calls end.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import grpc

from triskel.common.tls.files import (
    SERVER_FLAGS,
    ClientTlsFiles,
    FilesStamp,
    KeyPair,
    TlsFileError,
    TlsFiles,
    TlsFlags,
    files_stamp,
    read_ca,
    read_key_pair,
)
from triskel.common.tls.ssl_contexts import POLL_S

log = logging.getLogger(__name__)


class _Watched:
    """The files' last good pair and CA, re-read when their stamp changes (checked at
    most every `poll_s`; thread-safe: gRPC calls a server's fetcher from its threads)."""

    def __init__(self, files: TlsFiles, flags: TlsFlags, poll_s: float) -> None:
        self._files, self._flags, self._poll_s = files, flags, poll_s
        self._lock = threading.Lock()
        self._stamp: FilesStamp = files_stamp(files)
        self.pair: KeyPair = read_key_pair(files, flags)
        self.ca_pem: bytes | None = read_ca(files, flags)
        self._next_check = time.monotonic() + poll_s
        self._failed_stamp: FilesStamp | None = None

    def refresh(self) -> bool:
        """True if a changed, usable pair was read now."""
        with self._lock:
            now = time.monotonic()
            if now < self._next_check:
                return False
            self._next_check = now + self._poll_s
            stamp = files_stamp(self._files)
            if stamp == self._stamp:
                return False
            try:
                pair = read_key_pair(self._files, self._flags)
                ca_pem = read_ca(self._files, self._flags)
            except TlsFileError as error:
                if stamp != self._failed_stamp:
                    log.error(
                        "TLS files changed but cannot be used, keeping the old ones: %s", error
                    )
                    self._failed_stamp = stamp
                return False
            self.pair, self.ca_pem, self._stamp = pair, ca_pem, stamp
            log.info("TLS certificate reloaded from %s", self._files.cert_file)
            return True


def grpc_server_credentials(
    files: TlsFiles, flags: TlsFlags = SERVER_FLAGS, poll_s: float = POLL_S
) -> grpc.ServerCredentials:
    """Server credentials that follow `files`; with `require_client_cert`, clients must
    present a certificate signed by `ca_file` (mTLS). TlsFileError names a bad flag."""
    watched = _Watched(files, flags, poll_s)

    def configuration() -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(watched.pair.key_pem, watched.pair.cert_chain_pem)],
            root_certificates=watched.ca_pem,
        )

    def fetch() -> Any:
        return configuration() if watched.refresh() else None

    return grpc.dynamic_ssl_server_credentials(
        configuration(), fetch, require_client_authentication=files.require_client_cert
    )


class GrpcClientTls:
    """Channel credentials from a client's files (see `ClientTlsFiles`); TlsFileError
    naming the flag when they cannot be used."""

    def __init__(self, files: ClientTlsFiles, flags: TlsFlags, poll_s: float = POLL_S) -> None:
        self._watched = _Watched(files.as_files(), flags, poll_s)
        self._server_name = files.server_name
        self._generation = 0
        self._credentials = self._build()

    def credentials(self) -> tuple[int, grpc.ChannelCredentials]:
        """(generation, credentials): the generation grows when the files changed."""
        if self._watched.refresh():
            self._generation += 1
            self._credentials = self._build()
        return self._generation, self._credentials

    def channel_options(self) -> tuple[tuple[str, str], ...]:
        if self._server_name is None:
            return ()
        return (("grpc.ssl_target_name_override", self._server_name),)

    def _build(self) -> grpc.ChannelCredentials:
        pair = self._watched.pair
        return grpc.ssl_channel_credentials(
            root_certificates=self._watched.ca_pem,
            private_key=pair.key_pem,
            certificate_chain=pair.cert_chain_pem,
        )

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

from typing import Any

import grpc

from triskel.common.tls.files import SERVER_FLAGS, ClientTlsFiles, TlsFiles, TlsFlags
from triskel.common.tls.watched import POLL_S, TlsMaterial, WatchedTlsFiles


def grpc_server_credentials(
    files: TlsFiles, flags: TlsFlags = SERVER_FLAGS, poll_s: float = POLL_S
) -> grpc.ServerCredentials:
    """Server credentials that follow `files`; with `require_client_cert`, clients must
    present a certificate signed by `ca_file` (mTLS). TlsFileError names a bad flag."""
    watched = WatchedTlsFiles(files, flags, min_interval_s=poll_s)

    def configuration(material: TlsMaterial) -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(material.pair.key_pem, material.pair.cert_chain_pem)],
            root_certificates=material.ca_pem,
        )

    def fetch() -> Any:
        material = watched.read_if_changed()
        return None if material is None else configuration(material)

    return grpc.dynamic_ssl_server_credentials(
        configuration(watched.current),
        fetch,
        require_client_authentication=files.require_client_cert,
    )


class GrpcClientTls:
    """Channel credentials from a client's files (see `ClientTlsFiles`); TlsFileError
    naming the flag when they cannot be used."""

    def __init__(self, files: ClientTlsFiles, flags: TlsFlags, poll_s: float = POLL_S) -> None:
        self._watched = WatchedTlsFiles(files.as_files(), flags, min_interval_s=poll_s)
        self._server_name = files.server_name
        self._generation = 0
        self._credentials = self._build()

    def credentials(self) -> tuple[int, grpc.ChannelCredentials]:
        """(generation, credentials): the generation grows when the files changed."""
        if self._watched.read_if_changed() is not None:
            self._generation += 1
            self._credentials = self._build()
        return self._generation, self._credentials

    def channel_options(self) -> tuple[tuple[str, str], ...]:
        if self._server_name is None:
            return ()
        return (("grpc.ssl_target_name_override", self._server_name),)

    def _build(self) -> grpc.ChannelCredentials:
        current = self._watched.current
        return grpc.ssl_channel_credentials(
            root_certificates=current.ca_pem,
            private_key=current.pair.key_pem,
            certificate_chain=current.pair.cert_chain_pem,
        )

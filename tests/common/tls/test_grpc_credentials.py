"""gRPC over TLS: a server requiring client certificates (mTLS) serves the right client,
refuses others, and presents a renewed certificate to new connections; a client's
credentials follow its files."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from triskel.common.grpc_server import start_server
from triskel.common.tls import (
    ClientTlsFiles,
    GrpcClientTls,
    TlsFiles,
    TlsFlags,
    grpc_server_credentials,
)

from support.tls_certs import HttpsConnection, IssuedCert, Pki, make_pki, replace_pair

_CLIENT_FLAGS = TlsFlags("--worker-tls-cert-file", "--worker-tls-key-file", "--worker-tls-ca-file")


def _no_service(server: grpc.aio.Server) -> None:
    del server


async def _mtls_server(pki: Pki) -> tuple[grpc.aio.Server, int]:
    files = TlsFiles(
        cert_file=pki.server.cert_path,
        key_file=pki.server.key_path,
        ca_file=pki.ca.path,
        require_client_cert=True,
    )
    # poll_s 0: every handshake looks at the files (the default looks every 5 s).
    return await start_server(
        _no_service, "test.Tls", "127.0.0.1:0", grpc_server_credentials(files, poll_s=0.0)
    )


def _client_tls(pki: Pki, cert: IssuedCert) -> GrpcClientTls:
    files = ClientTlsFiles(cert_file=cert.cert_path, key_file=cert.key_path, ca_file=pki.ca.path)
    return GrpcClientTls(files, _CLIENT_FLAGS, poll_s=0.0)


async def _check(port: int, credentials: grpc.ChannelCredentials) -> grpc.StatusCode:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.asyncio
async def test_mtls_serves_the_right_client_and_refuses_others(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    server, port = await _mtls_server(pki)
    try:
        assert await _check(port, _client_tls(pki, pki.client).credentials()[1]) is (
            grpc.StatusCode.OK
        )
        ca_pem = pki.ca.path.read_bytes()
        without_cert = grpc.ssl_channel_credentials(root_certificates=ca_pem)
        assert await _check(port, without_cert) is grpc.StatusCode.UNAVAILABLE
        other_ca = grpc.ssl_channel_credentials(
            root_certificates=ca_pem,
            private_key=pki.stranger.key_path.read_bytes(),
            certificate_chain=pki.stranger.cert_path.read_bytes(),
        )
        assert await _check(port, other_ca) is grpc.StatusCode.UNAVAILABLE
        # A plaintext client gets nothing either.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)


@pytest.mark.asyncio
async def test_a_renewed_server_certificate_reaches_new_connections(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    server, port = await _mtls_server(pki)

    async def presented_serial() -> int:
        context = ssl.create_default_context(cafile=str(pki.ca.path))
        context.load_cert_chain(pki.client.cert_path, pki.client.key_path)
        context.set_alpn_protocols(["h2"])
        connection = await HttpsConnection.open(port, context)
        await connection.close()
        return connection.serial

    try:
        assert await presented_serial() == pki.server.serial
        renewed = pki.ca.issue(tmp_path, "renewed")
        replace_pair(pki.server, renewed)
        assert await presented_serial() == renewed.serial
        assert await _check(port, _client_tls(pki, pki.client).credentials()[1]) is (
            grpc.StatusCode.OK
        )
    finally:
        await server.stop(None)


def test_client_credentials_follow_their_files(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls = _client_tls(pki, pki.client)
    generation, credentials = tls.credentials()
    assert tls.credentials() == (generation, credentials)  # unchanged files: the same
    replace_pair(pki.client, pki.ca.issue(tmp_path, "renewed"))
    assert tls.credentials()[0] == generation + 1


def test_a_server_name_overrides_the_dialled_address(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = ClientTlsFiles(
        cert_file=pki.client.cert_path, key_file=pki.client.key_path, ca_file=pki.ca.path
    )
    named = files.model_copy(update={"server_name": "triskel-worker"})
    tls = GrpcClientTls(named, _CLIENT_FLAGS)
    assert tls.channel_options() == (("grpc.ssl_target_name_override", "triskel-worker"),)
    assert GrpcClientTls(files, _CLIENT_FLAGS).channel_options() == ()

"""Mutual TLS on the KV control channel: the right peer pulls (over TLS: a plaintext
peer is refused); a peer without a certificate, or with one from another CA, is
refused by the exporter; an exporter with a certificate from another CA is refused by
the importer. tcp moves the blocks on that channel; Mooncake's control frames use it."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from triskel.common.tls import TlsFiles
from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.connector import KvConnector, KvTransferError
from triskel.workers.kv.control import open_channel
from triskel.workers.kv.control_tls import KvTls
from triskel.workers.kv.registry import create_connector

from support.tls_certs import IssuedCert, Pki, make_pki

CONNECTOR_TYPES = ["tcp", "mooncake"]
NUM_BLOCKS = 8
BLOCK_BYTES = 4096


def _kv_tls(cert: IssuedCert, ca_path: Path) -> KvTls:
    return KvTls.from_files(
        TlsFiles(cert_file=cert.cert_path, key_file=cert.key_path, ca_file=ca_path)
    )


@dataclass
class Workers:
    pki: Pki
    key: KvAuthKey
    kind: str
    exporter: KvConnector
    source: KvArena
    done: list[str]

    async def importer(self, tls: KvTls | None) -> tuple[KvConnector, KvArena]:
        dest = KvArena(NUM_BLOCKS, BLOCK_BYTES)
        importer = create_connector(self.kind, {})
        await importer.start(dest, "decode-0", auth_key=self.key, tls=tls)
        return importer, dest

    async def pull(self, tls: KvTls | None, request_id: str) -> bytes:
        """Pulls a fresh export of blocks 0-1 with an importer using `tls`: its bytes."""
        handle = self.exporter.describe(request_id, [0, 1], num_tokens=32)
        importer, dest = await self.importer(tls)
        try:
            await importer.receive(handle, [4, 5], timeout_s=10)
            with dest.view(4, 2) as view:
                return bytes(view)
        finally:
            self.exporter.withdraw(request_id)
            await importer.close()
            dest.close()

    def expected(self) -> bytes:
        with self.source.view(0, 2) as view:
            return bytes(view)


@pytest_asyncio.fixture(params=CONNECTOR_TYPES)
async def workers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Workers]:
    pki = make_pki(tmp_path)
    key = KvAuthKey.generate()
    source = KvArena(NUM_BLOCKS, BLOCK_BYTES)
    for block_id in range(NUM_BLOCKS):
        source.fill_block(block_id, 1000 + block_id)
    exporter = create_connector(request.param, {})
    await exporter.start(source, "prefill-0", auth_key=key, tls=_kv_tls(pki.server, pki.ca.path))
    done: list[str] = []
    exporter.on_export_done(done.append)
    yield Workers(pki, key, request.param, exporter, source, done)
    await exporter.close()
    source.close()


@pytest.mark.asyncio
async def test_the_right_peer_pulls_over_tls(workers: Workers) -> None:
    pulled = await workers.pull(_kv_tls(workers.pki.client, workers.pki.ca.path), "req-1")
    assert pulled == workers.expected()
    assert workers.done == ["req-1"]


@pytest.mark.asyncio
async def test_a_plaintext_peer_is_refused(workers: Workers) -> None:
    # The same KV key and a valid token: only TLS is missing.
    with pytest.raises(KvTransferError):
        await workers.pull(None, "req-1")
    assert workers.done == []


@pytest.mark.asyncio
async def test_an_exporter_from_another_ca_is_refused_by_the_importer(workers: Workers) -> None:
    pki = workers.pki
    # The importer trusts only the first CA; this exporter shows the second CA's cert.
    impostor_source = KvArena(NUM_BLOCKS, BLOCK_BYTES)
    impostor = create_connector(workers.kind, {})
    await impostor.start(
        impostor_source, "prefill-1", auth_key=workers.key, tls=_kv_tls(pki.stranger, pki.ca.path)
    )
    importer, dest = await workers.importer(_kv_tls(pki.client, pki.ca.path))
    try:
        handle = impostor.describe("req-2", [0, 1], num_tokens=32)
        with pytest.raises(KvTransferError):
            await importer.receive(handle, [4, 5], timeout_s=10)
    finally:
        await importer.close()
        await impostor.close()
        dest.close()
        impostor_source.close()


@pytest.mark.parametrize("client_cert", ["none", "other_ca"])
@pytest.mark.asyncio
async def test_a_peer_without_a_certificate_of_the_ca_is_refused(
    workers: Workers, client_cert: str, caplog: pytest.LogCaptureFixture
) -> None:
    pki = workers.pki
    context = ssl.create_default_context(cafile=str(pki.ca.path))
    context.check_hostname = False
    if client_cert == "other_ca":
        context.load_cert_chain(pki.stranger.cert_path, pki.stranger.key_path)
    with caplog.at_level(logging.WARNING, logger="triskel.workers.kv.control"):
        # Under TLS 1.3 the client's handshake ends before the server has checked its
        # certificate: the refusal arrives instead of the exporter's challenge frame.
        channel = await open_channel(workers.exporter.address, context)
        try:
            with pytest.raises((OSError, asyncio.IncompleteReadError)):
                await channel.recv_frame(timeout_s=10)
        finally:
            channel.close()
    assert any("TLS handshake failed" in r.getMessage() for r in caplog.records)
    # The exporter keeps serving the right peer.
    pulled = await workers.pull(_kv_tls(pki.client, pki.ca.path), "req-3")
    assert pulled == workers.expected()


def test_mutual_tls_needs_a_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = TlsFiles(cert_file=pki.server.cert_path, key_file=pki.server.key_path)
    with pytest.raises(ValueError, match=r"^--tls-client-ca-file: needed"):
        KvTls.from_files(files)

"""The operator's drain probe reaches a worker serving mTLS with its client certificate;
without one the worker does not answer it (and a drain would not wait on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from triskel.common.tls import ClientTlsFiles, GrpcClientTls, TlsFlags
from triskel.operator.worker_probe import work_in_flight

from support.local_workers import local_worker, mock_pool
from support.tls_certs import make_pki


@pytest.mark.asyncio
async def test_the_probe_asks_an_mtls_worker_with_its_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls = {
        "cert_file": pki.server.cert_path,
        "key_file": pki.server.key_path,
        "ca_file": pki.ca.path,
        "require_client_cert": True,
    }
    client = GrpcClientTls(
        ClientTlsFiles(
            cert_file=pki.client.cert_path, key_file=pki.client.key_path, ca_file=pki.ca.path
        ),
        TlsFlags(),
    )
    async with local_worker(mock_pool("unified"), tls=tls) as worker:
        assert await work_in_flight(worker.endpoints.grpc, tls=client) == 0
        assert await work_in_flight(worker.endpoints.grpc) is None

"""The router's channel to an mTLS worker follows its client certificate's files: after a
renewal the next call goes out on a new channel with the new certificate (shown here by
renewing to one the worker refuses, then to one it accepts)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from triskel.common.tls import ClientTlsFiles, GrpcClientTls, ReloadingSslContext, TlsFlags
from triskel.router.backends.dialing import WorkerDialing
from triskel.router.backends.frame_channel import FrameTls
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.v1 import worker_pb2

from support.local_workers import local_worker, mock_pool
from support.tls_certs import make_pki, replace_pair


async def _call(client: GrpcWorkerClient) -> grpc.StatusCode:
    try:
        await client.stub.GetInfo(worker_pb2.GetInfoRequest(), timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.asyncio
async def test_a_renewed_client_certificate_reaches_the_next_call(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    worker_tls = {
        "cert_file": pki.server.cert_path,
        "key_file": pki.server.key_path,
        "ca_file": pki.ca.path,
        "require_client_cert": True,
    }
    files = ClientTlsFiles(
        cert_file=pki.client.cert_path, key_file=pki.client.key_path, ca_file=pki.ca.path
    )
    # poll_s 0: every call looks at the files (the router's default looks every 5 s).
    tls = GrpcClientTls(files, TlsFlags(), poll_s=0.0)
    frame_tls = FrameTls(ReloadingSslContext(files.as_files(), server=False), None)
    async with local_worker(mock_pool("unified"), tls=worker_tls) as worker:
        client = GrpcWorkerClient(worker.endpoints.grpc, WorkerDialing(tls, frame_tls))
        try:
            identity = await client.connect(10)
            assert identity.worker_id == "w0"
            replace_pair(pki.client, pki.stranger)  # another CA's: the worker refuses it
            assert await _call(client) is grpc.StatusCode.UNAVAILABLE
            replace_pair(pki.client, pki.ca.issue(tmp_path, "renewed"))
            assert await _call(client) is grpc.StatusCode.OK
        finally:
            await client.close()

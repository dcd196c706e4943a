"""The router's channel to an mTLS worker follows its client certificate's files: after a
renewal the next call goes out on a new channel with the new certificate (shown here by
renewing to one the worker refuses, then to one it accepts). Frame connections do the
same: each new one loads the files as they are then."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from triskel.common.tls import ClientTlsFiles, GrpcClientTls, ReloadingSslContext, TlsFlags
from triskel.router.backends.dialing import WorkerDialing
from triskel.router.backends.frame_channel import FrameChannel, FrameTls
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.worker_client import CallFailure, PrefillCall, WorkerCallError
from triskel.v1 import worker_frames_pb2, worker_pb2

from support.local_workers import local_worker, mock_pool
from support.tls_certs import Pki, make_pki, replace_pair


def _worker_tls(pki: Pki) -> dict[str, object]:
    return {
        "cert_file": pki.server.cert_path,
        "key_file": pki.server.key_path,
        "ca_file": pki.ca.path,
        "require_client_cert": True,
    }


def _client_files(pki: Pki) -> ClientTlsFiles:
    return ClientTlsFiles(
        cert_file=pki.client.cert_path, key_file=pki.client.key_path, ca_file=pki.ca.path
    )


def _dialing(files: ClientTlsFiles) -> WorkerDialing:
    # poll_s 0: every call looks at the files (the router's default looks every 5 s).
    tls = GrpcClientTls(files, TlsFlags(), poll_s=0.0)
    return WorkerDialing(tls, FrameTls(ReloadingSslContext(files.as_files(), server=False), None))


async def _call(client: GrpcWorkerClient) -> grpc.StatusCode:
    try:
        await client.stub.GetInfo(worker_pb2.GetInfoRequest(), timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.asyncio
async def test_a_renewed_client_certificate_reaches_the_next_call(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = _client_files(pki)
    async with local_worker(mock_pool("unified"), tls=_worker_tls(pki)) as worker:
        client = GrpcWorkerClient(worker.endpoints.grpc, _dialing(files))
        try:
            identity = await client.connect(10)
            assert identity.worker_id == "w0"
            replace_pair(pki.client, pki.stranger)  # another CA's: the worker refuses it
            assert await _call(client) is grpc.StatusCode.UNAVAILABLE
            replace_pair(pki.client, pki.ca.issue(tmp_path, "renewed"))
            assert await _call(client) is grpc.StatusCode.OK
        finally:
            await client.close()


async def _frame_failure(channel: FrameChannel) -> CallFailure | None:
    """Opens `channel` and makes one call (a Cancel, which has no effect); None when it
    is answered. A refused certificate fails at connect, or with TLS 1.3 (the client
    finishes its handshake before the worker checks its certificate) at the call."""
    try:
        await channel.connect(timeout_s=10)
        call = worker_frames_pb2.FrameCall(cancel=worker_pb2.CancelRequest(request_id="r0"))
        stream = await channel.call(call, timeout_s=10)
        try:
            payload = await stream.next()
            assert payload is not None
            reply = worker_pb2.CancelResponse.FromString(payload)
            stream.finished()
        finally:
            stream.close()
    except WorkerCallError as error:
        assert "127.0.0.1" not in error.details  # errors never carry internal addresses
        return error.failure
    finally:
        await channel.close()
    assert not reply.found
    return None


@pytest.mark.asyncio
async def test_frame_connections_to_an_mtls_worker_use_the_current_certificate(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path)
    files = _client_files(pki)
    async with local_worker(mock_pool("unified"), tls=_worker_tls(pki)) as worker:
        dialing = _dialing(files)
        frame_tls = dialing.frame_tls
        client = GrpcWorkerClient(worker.endpoints.grpc, dialing)
        try:
            await client.connect(10)
            assert client.serves_frames
            reply = await client.prefill(PrefillCall("r1", [1, 2, 3], 4, kv_hold_ms=30_000), 10)
            assert reply.kv is not None
            await client.cancel("r1")
        finally:
            await client.close()
        assert worker.endpoints.frames is not None
        host, port = worker.endpoints.frames.rsplit(":", 1)
        # The control: a new channel with the router's certificate is answered.
        assert await _frame_failure(FrameChannel(host, int(port), frame_tls)) is None
        # Plaintext to the TLS port: the worker's handshake fails and it closes.
        plaintext = FrameChannel(host, int(port), None)
        assert await _frame_failure(plaintext) is CallFailure.UNAVAILABLE
        replace_pair(pki.client, pki.stranger)  # another CA's: the worker refuses it
        assert await _frame_failure(FrameChannel(host, int(port), frame_tls)) is (
            CallFailure.UNAVAILABLE
        )
        replace_pair(pki.client, pki.ca.issue(tmp_path, "renewed"))
        assert await _frame_failure(FrameChannel(host, int(port), frame_tls)) is None

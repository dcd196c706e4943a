"""The router over TLS: HTTPS and gRPC TLS on its API listeners (a plaintext client is
refused), mTLS to its workers (a router without a client certificate cannot call
them), and a whole P/D request with TLS everywhere: client → router → prefill and
decode workers, the decode worker pulling KV over mutual TLS. Certificates are made
by the test."""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from triskel.router.process import RouterStartupError

from support.local_workers import local_worker, mock_pool
from support.router_process import router_config, running_router
from support.tls_certs import HttpsConnection, Pki, client_context, make_pki


def _tls(pki: Pki) -> dict[str, str]:
    return {"certFile": str(pki.server.cert_path), "keyFile": str(pki.server.key_path)}


def _worker_tls(pki: Pki) -> dict[str, Any]:
    """A worker's files: it serves with them and requires the CA's client certificates."""
    return {
        "cert_file": pki.server.cert_path,
        "key_file": pki.server.key_path,
        "ca_file": pki.ca.path,
        "require_client_cert": True,
    }


async def _complete(url: str, context: ssl.SSLContext) -> dict[str, Any]:
    body = {"model": "m", "prompt": "hello over tls", "max_tokens": 4}
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(f"{url}/v1/completions", json=body) as reply,
    ):
        assert reply.status == 200, await reply.text()
        answer: dict[str, Any] = orjson.loads(await reply.read())
        return answer


@pytest.mark.asyncio
async def test_https_and_grpc_tls_on_the_api_listeners(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with (
        local_worker(mock_pool("unified")) as worker,
        running_router(router_config([worker.endpoints.grpc], tls=_tls(pki))) as router,
    ):
        https = f"https://{router.http_address}"
        answer = await _complete(https, client_context(pki.ca.path))
        assert answer["choices"][0]["text"]
        connection = await HttpsConnection.open(
            int(router.http_address.rsplit(":", 1)[1]), client_context(pki.ca.path)
        )
        assert connection.serial == pki.server.serial
        await connection.close()
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.get(f"http://{router.http_address}/health")
        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.path.read_bytes())
        async with grpc.aio.secure_channel(router.grpc_address, credentials) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(router.grpc_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_pd_with_mutual_tls_everywhere(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    key_file = tmp_path / "kv.key"
    key_file.write_text(secrets.token_hex(32))
    worker_fields = {"tls": _worker_tls(pki), "kv_auth_key_file": str(key_file)}
    worker_tls = {
        "certFile": str(pki.client.cert_path),
        "keyFile": str(pki.client.key_path),
        "caFile": str(pki.ca.path),
    }
    async with (
        local_worker(mock_pool("prefill"), "p0", **worker_fields) as prefill,
        local_worker(mock_pool("decode"), "d0", **worker_fields) as decode,
    ):
        workers = [prefill.endpoints.grpc, decode.endpoints.grpc]
        config = router_config(workers, tls=_tls(pki), workerTls=worker_tls)
        async with running_router(config) as router:
            answer = await _complete(f"https://{router.http_address}", client_context(pki.ca.path))
        assert answer["choices"][0]["text"]
        assert answer["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize("router_cert", ["none", "other_ca"])
@pytest.mark.asyncio
async def test_a_router_without_the_cas_client_certificate_cannot_call_workers(
    tmp_path: Path, router_cert: str
) -> None:
    pki = make_pki(tmp_path)
    fields: dict[str, Any] = {"connectTimeoutS": 3.0}
    if router_cert == "other_ca":
        fields["workerTls"] = {
            "certFile": str(pki.stranger.cert_path),
            "keyFile": str(pki.stranger.key_path),
            "caFile": str(pki.ca.path),
        }
    async with local_worker(mock_pool("unified"), tls=_worker_tls(pki)) as worker:
        with pytest.raises(RouterStartupError, match="cannot reach a worker"):
            async with running_router(router_config([worker.endpoints.grpc], **fields)):
                pass


@pytest.mark.asyncio
async def test_a_key_of_another_certificate_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls = {"certFile": str(pki.server.cert_path), "keyFile": str(pki.client.key_path)}
    with pytest.raises(RouterStartupError, match=r"^--tls-key-file: .* is not the key") as raised:
        async with running_router(router_config(["127.0.0.1:1"], tls=tls)):
            pass
    assert "\n" not in str(raised.value)

"""The gate through both fronts over a fake generator: real sockets on 127.0.0.1:0.

HTTP 401 + WWW-Authenticate, 403, 429 + Retry-After; gRPC UNAUTHENTICATED,
PERMISSION_DENIED, RESOURCE_EXHAUSTED + retry-after; what the generator (and so the
admission queue and the cache) receives: the key's tenant and a capped priority.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio

from triskel.common.http_listener import HttpLimits, start_http_listener
from triskel.router.auth.authenticator import Authenticator
from triskel.router.auth.config import AuthConfig
from triskel.router.auth.errors import Unauthenticated
from triskel.router.auth.setup import open_authenticator
from triskel.router.grpc_api import RouterServicer, start_grpc_server
from triskel.router.http_api import build_http_app
from triskel.router.metrics import RouterMetrics
from triskel.v1 import router_pb2, router_pb2_grpc

from support.fake_generator import MODEL, FakeGenerator
from support.local_workers import MetricKey

KEY_A = "tsk_key-of-team-a"
KEY_OTHER = "tsk_key-for-another-model"
DEADLINE_S = 5.0


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


KEYS_FILE = f"""keys:
  - name: team-a
    sha256: {sha(KEY_A)}
    tenant: acme
    models: [{MODEL}]
    maxPriority: 5
    rateLimit: {{requestsPerMinute: 3}}
  - name: other
    sha256: {sha(KEY_OTHER)}
    tenant: globex
    models: [other-model]
"""


@dataclass
class Fronts:
    generator: FakeGenerator
    metrics: RouterMetrics
    auth: Authenticator
    http_url: str
    session: aiohttp.ClientSession
    stub: router_pb2_grpc.RouterStub

    async def chat(self, headers: dict[str, str], model: str = MODEL) -> aiohttp.ClientResponse:
        body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        async with self.session.post(
            f"{self.http_url}/v1/chat/completions", json=body, headers=headers
        ) as reply:
            await reply.read()
            return reply

    def count(self, key: MetricKey) -> float:
        value = self.metrics.registry.get_sample_value(key[0], dict(key[1]))
        return value or 0.0


@pytest_asyncio.fixture
async def fronts(tmp_path: Path) -> AsyncIterator[Fronts]:
    (tmp_path / "keys.yaml").write_text(KEYS_FILE)
    generator = FakeGenerator()
    metrics = RouterMetrics()
    config = AuthConfig(api_keys_file=tmp_path / "keys.yaml")
    auth = open_authenticator(config, None, metrics, generator.models)
    runner, http_port = await start_http_listener(
        build_http_app(generator, metrics, authenticator=auth), "127.0.0.1", 0, HttpLimits()
    )
    server, grpc_port = await start_grpc_server(
        RouterServicer(generator, metrics, auth), "127.0.0.1:0"
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    session = aiohttp.ClientSession()
    yield Fronts(
        generator,
        metrics,
        auth,
        f"http://127.0.0.1:{http_port}",
        session,
        router_pb2_grpc.RouterStub(channel),
    )
    await session.close()
    await channel.close()
    await server.stop(None)
    await runner.cleanup()
    await auth.aclose()


def failures(reason: str) -> MetricKey:
    return "triskel_auth_failures_total", frozenset({("reason", reason)})


@pytest.mark.parametrize(
    ("headers", "reason", "challenge"),
    [
        ({}, "missing", 'Bearer realm="triskel"'),
        ({"Authorization": "Bearer tsk_wrong"}, "invalid_key", 'error="invalid_token"'),
        ({"x-api-key": "tsk_wrong"}, "invalid_key", 'error="invalid_token"'),
        ({"Authorization": f"Basic {KEY_A}"}, "invalid_key", 'error="invalid_token"'),
    ],
)
@pytest.mark.asyncio
async def test_http_without_a_valid_key_is_401_with_a_challenge(
    fronts: Fronts, headers: dict[str, str], reason: str, challenge: str
) -> None:
    reply = await fronts.chat(headers)
    assert reply.status == 401
    assert challenge in reply.headers["WWW-Authenticate"]
    error = (await reply.json())["error"]
    assert error["type"] == "authentication_error"
    assert "tsk_wrong" not in error["message"] and KEY_A not in error["message"]
    assert fronts.count(failures(reason)) == 1
    assert fronts.generator.requests == []  # nothing reached the generator


@pytest.mark.asyncio
async def test_http_with_a_key_serves_as_the_keys_tenant_with_a_capped_priority(
    fronts: Fronts,
) -> None:
    for credential in ({"Authorization": f"Bearer {KEY_A}"}, {"x-api-key": KEY_A}):
        reply = await fronts.chat({**credential, "x-priority": "9", "x-tenant": "acme"})
        assert reply.status == 200
    for request in fronts.generator.requests:
        # What admission and the cache read: the key's tenant, the priority at the ceiling,
        # and no credential.
        assert request.headers["x-tenant"] == "acme"
        assert request.headers["x-priority"] == "5"
        assert "authorization" not in request.headers and "x-api-key" not in request.headers
    capped = ("triskel_auth_priority_capped_total", frozenset({("tenant", "acme")}))
    assert fronts.count(capped) == 2


@pytest.mark.parametrize(
    ("headers", "model", "field", "reason"),
    [
        ({"Authorization": f"Bearer {KEY_A}"}, "other-model", "model", "model"),
        ({"Authorization": f"Bearer {KEY_A}", "x-tenant": "globex"}, MODEL, "x-tenant", "tenant"),
        ({"Authorization": f"Bearer {KEY_OTHER}"}, MODEL, "model", "model"),
    ],
)
@pytest.mark.asyncio
async def test_http_beyond_the_keys_grants_is_403_naming_the_field(
    fronts: Fronts, headers: dict[str, str], model: str, field: str, reason: str
) -> None:
    reply = await fronts.chat(headers, model)
    assert reply.status == 403
    error = (await reply.json())["error"]
    assert error["param"] == field and error["type"] == "permission_denied"
    assert fronts.count(failures(reason)) == 1


@pytest.mark.asyncio
async def test_http_past_the_rate_limit_is_429_with_retry_after(fronts: Fronts) -> None:
    headers = {"Authorization": f"Bearer {KEY_A}"}
    statuses = [(await fronts.chat(headers)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    reply = await fronts.chat(headers)
    assert reply.status == 429
    # 3 per minute: one refills in 20 s; whole seconds, rounded up.
    assert 1 <= int(reply.headers["Retry-After"]) <= 20
    assert "requests per minute" in (await reply.json())["error"]["message"]
    limited = ("triskel_rate_limited_total", frozenset({("tenant", "acme"), ("limit", "requests")}))
    assert fronts.count(limited) == 1


@pytest.mark.asyncio
async def test_health_stays_open_and_models_lists_only_the_keys(fronts: Fronts) -> None:
    async with fronts.session.get(f"{fronts.http_url}/health") as reply:
        assert reply.status == 200
    async with fronts.session.get(f"{fronts.http_url}/v1/models") as reply:
        assert reply.status == 401
    for key, expected in ((KEY_A, [MODEL]), (KEY_OTHER, [])):
        async with fronts.session.get(
            f"{fronts.http_url}/v1/models", headers={"Authorization": f"Bearer {key}"}
        ) as reply:
            assert [model["id"] for model in (await reply.json())["data"]] == expected


def generate_request(model: str = MODEL) -> router_pb2.GenerateRequest:
    return router_pb2.GenerateRequest(model=model, prompt="Hi", max_tokens=4)


async def grpc_generate(
    fronts: Fronts, metadata: tuple[tuple[str, str], ...], model: str = MODEL
) -> grpc.aio.AioRpcError | None:
    try:
        call = fronts.stub.Generate(generate_request(model), metadata=metadata, timeout=DEADLINE_S)
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as error:
        return error
    return None


@pytest.mark.parametrize(
    ("metadata", "model", "code"),
    [
        ((), MODEL, grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer tsk_wrong"),), MODEL, grpc.StatusCode.UNAUTHENTICATED),
        ((("x-api-key", KEY_A),), "other-model", grpc.StatusCode.PERMISSION_DENIED),
        ((("x-api-key", KEY_A), ("x-tenant", "globex")), MODEL, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
@pytest.mark.asyncio
async def test_grpc_refusals_have_their_status(
    fronts: Fronts, metadata: tuple[tuple[str, str], ...], model: str, code: grpc.StatusCode
) -> None:
    error = await grpc_generate(fronts, metadata, model)
    assert error is not None and error.code() == code
    assert "tsk_wrong" not in (error.details() or "")
    assert fronts.generator.requests == []


@pytest.mark.asyncio
async def test_grpc_rate_limit_is_resource_exhausted_with_retry_after(fronts: Fronts) -> None:
    metadata = (("authorization", f"Bearer {KEY_A}"), ("x-priority", "7"))
    for _ in range(3):
        assert await grpc_generate(fronts, metadata) is None
    assert fronts.generator.requests[0].headers["x-priority"] == "5"
    error = await grpc_generate(fronts, metadata)
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry_after = dict(error.trailing_metadata() or ())["retry-after"]
    assert 1 <= int(retry_after) <= 20


@pytest.mark.asyncio
async def test_grpc_list_models_needs_a_key_and_lists_its_models(fronts: Fronts) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await fronts.stub.ListModels(router_pb2.ListModelsRequest(), timeout=DEADLINE_S)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reply = await fronts.stub.ListModels(
        router_pb2.ListModelsRequest(), metadata=(("x-api-key", KEY_OTHER),), timeout=DEADLINE_S
    )
    assert list(reply.models) == []


@pytest.mark.asyncio
async def test_a_malformed_authorization_header_says_how_to_send_a_key(fronts: Fronts) -> None:
    with pytest.raises(Unauthenticated, match="Bearer <API key or token>"):
        await fronts.auth.authenticate({"authorization": "Bearer"})

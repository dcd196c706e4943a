"""The operator gives a model's pools one KV key Secret (kmock): created before the
pools' pods, once, never overwritten, outliving any one pool, back after a deletion."""

from __future__ import annotations

import base64
from typing import Any

import kmock
import pytest

from triskel.operator.builders.kv_key import kv_key_secret_name

from support.kube_emulator import NAMESPACE, collection_path, create, stored
from support.operator_thread import EMULATOR_OPTIONS, running_operator
from support.waiting import wait_until

GROUP_VERSION = "triskel.io/v1alpha1"
MODEL = "meta-llama/Llama-3.1-8B"
SECRETS = kmock.resource("v1/secrets")


def pool(name: str, role: str, model: str = MODEL, engine: str = "mock") -> dict[str, Any]:
    spec: dict[str, Any] = {"role": role, "model": model, "engine": {"type": engine}}
    if engine != "mock":
        spec |= {"resources": {"gpus": 1}, "kvConnector": {"type": "mooncake"}}
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": spec,
    }


def secret(server: kmock.KubernetesEmulator, model: str = MODEL) -> Any:
    return stored(server, "v1", "secrets", kv_key_secret_name(model))


def secrets_stored(server: kmock.KubernetesEmulator) -> list[Any]:
    return [o for k, o in server.objects.items() if k[0] == SECRETS and not o.deleted]


async def creates_tried(server: kmock.KubernetesEmulator, count: int) -> None:
    """Waits until the operator has asked to create a Secret `count` times: each
    reconcile and each status-timer round (0.5 s here) asks once per pool."""
    await wait_until(lambda: len(server[kmock.method.POST, SECRETS]) >= count, timeout_s=15)


def deployment(server: kmock.KubernetesEmulator, name: str) -> Any:
    return stored(server, "apps/v1", "deployments", name)


def key_of(obj: Any) -> bytes:
    return base64.b64decode(obj["data"]["key"])


def mounted_secret(server: kmock.KubernetesEmulator, pool_name: str) -> str:
    volumes = deployment(server, pool_name)["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if "secret" in v]
    name: str = volume["secret"]["secretName"]
    return name


@pytest.mark.asyncio
async def test_the_pools_of_a_model_share_one_secret_created_once(
    server: kmock.KubernetesEmulator,
) -> None:
    async with running_operator(server, EMULATOR_OPTIONS):
        await create(server, pool("prefill", "prefill"))
        await wait_until(lambda: deployment(server, "prefill") is not None, timeout_s=15)
        # Created before the Deployment, so the pods never wait for it.
        first = secret(server)
        assert first is not None and len(key_of(first)) == 64
        assert "ownerReferences" not in first["metadata"]
        await create(server, pool("decode", "decode"))
        await wait_until(lambda: deployment(server, "decode") is not None, timeout_s=15)
        await creates_tried(server, 6)
        # Both pools mount the one Secret, whose key never changed: the second pool's
        # reconcile and the timer rounds found it there and left it alone.
        assert mounted_secret(server, "prefill") == mounted_secret(server, "decode")
        assert mounted_secret(server, "decode") == kv_key_secret_name(MODEL)
        assert [key_of(s) for s in secrets_stored(server)] == [key_of(first)]
        # Deleting a pool leaves its model's key to the other pools.
        await server.delete(collection_path(GROUP_VERSION, "workerpools") + "/prefill")
        await wait_until(lambda: deployment(server, "prefill") is None, timeout_s=15)
        assert key_of(secret(server)) == key_of(first)


@pytest.mark.asyncio
async def test_another_model_gets_its_own_key_and_vllm_pools_none(
    server: kmock.KubernetesEmulator,
) -> None:
    async with running_operator(server, EMULATOR_OPTIONS):
        await create(server, pool("a", "decode", model="model-a"))
        await create(server, pool("b", "decode", model="model-b"))
        await create(server, pool("v", "decode", model="model-v", engine="vllm"))
        await wait_until(
            lambda: all(deployment(server, name) is not None for name in ("a", "b", "v")),
            timeout_s=15,
        )
        assert key_of(secret(server, "model-a")) != key_of(secret(server, "model-b"))
        # vLLM moves KV with its own connectors: no Triskel key.
        assert secret(server, "model-v") is None
        assert len(secrets_stored(server)) == 2


@pytest.mark.asyncio
async def test_a_secret_made_beforehand_is_used_and_a_deleted_one_comes_back(
    server: kmock.KubernetesEmulator,
) -> None:
    own_key = b"k" * 48
    response = await server.post(
        collection_path("v1", "secrets"),
        json={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": kv_key_secret_name(MODEL),
                "namespace": NAMESPACE,
                "resourceVersion": "1",
            },
            "data": {"key": base64.b64encode(own_key).decode()},
        },
    )
    assert response.status < 300, await response.text()
    async with running_operator(server, EMULATOR_OPTIONS):
        await create(server, pool("decode", "decode"))
        await wait_until(lambda: deployment(server, "decode") is not None, timeout_s=15)
        await creates_tried(server, 4)
        # A user's own key is never overwritten.
        assert key_of(secret(server)) == own_key
        # Deleting it rotates the key: the status timer creates a new one.
        await server.delete(collection_path("v1", "secrets") + "/" + kv_key_secret_name(MODEL))
        await wait_until(lambda: secret(server) is not None, timeout_s=15)
        assert key_of(secret(server)) != own_key

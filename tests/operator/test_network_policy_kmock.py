"""With the chart's networkPolicy.enabled the operator keeps a NetworkPolicy per pool
(kmock): created with the pool's other children, owned by it, deleted with the pool;
without it, none."""

from __future__ import annotations

import dataclasses
from typing import Any

import kmock
import pytest

from triskel.operator.builders.network_policy import WorkerCallers

from support.kube_emulator import NAMESPACE, collection_path, create, stored
from support.operator_thread import EMULATOR_OPTIONS, running_operator
from support.waiting import wait_until

GROUP_VERSION = "triskel.io/v1alpha1"
CALLERS = WorkerCallers(NAMESPACE, {"component": "router"}, {"component": "operator"})
WITH_POLICIES = dataclasses.replace(EMULATOR_OPTIONS, worker_callers=CALLERS)
POLICIES = kmock.resource("networking.k8s.io/v1/networkpolicies")


def pool(name: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": {"role": "decode", "model": "m"},
    }


def policy(server: kmock.KubernetesEmulator, name: str) -> Any:
    return stored(server, "networking.k8s.io/v1", "networkpolicies", name)


def deployment(server: kmock.KubernetesEmulator, name: str) -> Any:
    return stored(server, "apps/v1", "deployments", name)


@pytest.mark.asyncio
async def test_each_pool_gets_an_owned_policy_deleted_with_it(
    server: kmock.KubernetesEmulator,
) -> None:
    async with running_operator(server, WITH_POLICIES):
        await create(server, pool("decode"))
        await wait_until(lambda: policy(server, "decode") is not None, timeout_s=15)
        created = policy(server, "decode")
        assert created["metadata"]["ownerReferences"][0]["name"] == "decode"
        [serving, _kv] = created["spec"]["ingress"]
        assert [p["podSelector"]["matchLabels"] for p in serving["from"]] == [
            {"component": "router"},
            {"component": "operator"},
        ]
        await server.delete(collection_path(GROUP_VERSION, "workerpools") + "/decode")
        await wait_until(lambda: policy(server, "decode") is None, timeout_s=30)


@pytest.mark.asyncio
async def test_without_callers_no_policy_is_made(server: kmock.KubernetesEmulator) -> None:
    async with running_operator(server, EMULATOR_OPTIONS):
        await create(server, pool("decode"))
        await wait_until(lambda: deployment(server, "decode") is not None, timeout_s=15)
        # The policy would be applied right after the Deployment and Service.
        await wait_until(
            lambda: stored(server, "v1", "services", "decode") is not None, timeout_s=15
        )
    assert len(server[POLICIES]) == 0

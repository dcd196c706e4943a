"""Handlers of every kind publish the router ConfigMap; concurrent first writes must all
succeed. Before, two reconciles racing to create it lost one to HTTP 409, and kopf
retried that handler only 60 s later."""

from __future__ import annotations

import asyncio

import pytest

from triskel.common.kube import Credentials, KubeClient
from triskel.common.router_cluster import ROUTER_CONFIG_MAP_NAME
from triskel.operator.policy_check import PolicyJudge
from triskel.operator.router_config_sync import publish_router_config
from triskel.operator.runtime import OperatorOptions, OperatorRuntime

from support.kube_rig import RealApi
from support.realapi_operator import get

pytestmark = [pytest.mark.realapi, pytest.mark.asyncio]


def admin(api: RealApi) -> Credentials:
    return Credentials(server=api.server, token=api.admin_token, ca_path=str(api.ca_path))


async def test_racing_first_writes_all_succeed(real_api: RealApi, namespace: str) -> None:
    # Several writers (e.g. two operator replicas during a rollout) at once: a create
    # that loses to another becomes a patch of the winner's object.
    kube = KubeClient(admin(real_api))
    try:
        await asyncio.gather(
            *(publish_router_config(kube, namespace, PolicyJudge(), (namespace,)) for _ in range(8))
        )
    finally:
        await kube.close()
    assert get(real_api, "configmap", ROUTER_CONFIG_MAP_NAME, namespace) is not None


async def test_one_operator_publishes_one_at_a_time(real_api: RealApi, namespace: str) -> None:
    runtime = OperatorRuntime(OperatorOptions(router_namespace=namespace, namespaces=(namespace,)))
    runtime.logged_in(admin(real_api))
    try:
        await asyncio.gather(*(runtime.publish_router_config() for _ in range(8)))
    finally:
        await runtime.close()
    assert get(real_api, "configmap", ROUTER_CONFIG_MAP_NAME, namespace) is not None

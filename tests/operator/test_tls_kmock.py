"""The operator with --worker-tls-secret (kmock): every Triskel worker pod it builds
mounts that Secret and serves mTLS from it."""

from __future__ import annotations

import dataclasses
from typing import Any

import kmock
import pytest

from triskel.operator.builders.tls import TLS_VOLUME

from support.kube_emulator import create, stored
from support.operator_thread import EMULATOR_OPTIONS, running_operator
from support.waiting import wait_until

SECRET = "triskel-worker-tls"


def _pool(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": {"role": "unified", "model": "m"},
    }


@pytest.mark.asyncio
async def test_worker_pods_mount_the_tls_secret(server: kmock.KubernetesEmulator) -> None:
    options = dataclasses.replace(EMULATOR_OPTIONS, worker_tls_secret=SECRET)
    async with running_operator(server, options):
        await create(server, _pool("p1"))
        await wait_until(
            lambda: stored(server, "apps/v1", "deployments", "p1") is not None, timeout_s=15
        )
    pod = stored(server, "apps/v1", "deployments", "p1")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[TLS_VOLUME]["secret"]["secretName"] == SECRET
    assert "--tls-client-ca-file" in pod["containers"][0]["args"]

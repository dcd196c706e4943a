"""The process kubelet's Node: registered Ready, and kept alive.

kube-controller-manager's node lifecycle controller marks a node NotReady (Unknown)
when neither its Ready condition's heartbeat nor its Lease (`kube-node-lease`) was
renewed for 40 s, then taints it and evicts its pods. Both are renewed every
HEARTBEAT_S here, well inside that. Capacity and allocatable are this machine's CPUs
and memory and 110 pods (a kubelet's default); nothing checks that pods fit.

On `deregister` the Node is deleted, as when a machine leaves a cluster (the kubelet
deletes the pods it ran first: see kubelet.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from datetime import UTC, datetime

import aiohttp

from .api import ApiClient, ApiError, Json

log = logging.getLogger(__name__)
HEARTBEAT_S = 5.0
LEASE_DURATION_S = 40
LEASE_NAMESPACE = "kube-node-lease"


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def node_labels(name: str) -> dict[str, str]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }


def node_status(name: str, ready_since: str) -> Json:
    resources = {"cpu": str(os.cpu_count() or 1), "memory": str(_memory_bytes()), "pods": "110"}
    heartbeat = _time()

    def condition(kind: str, status: str, reason: str, message: str) -> Json:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": ready_since,
        }

    return {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "enough memory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "enough PIDs"),
            condition("Ready", "True", "KubeletReady", "process kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ],
        "nodeInfo": {
            "architecture": node_labels(name)["kubernetes.io/arch"],
            "operatingSystem": "linux",
            "kubeletVersion": "v1.20.2-process",
            "kubeProxyVersion": "v1.20.2-process",
            "containerRuntimeVersion": "process://0",
            "osImage": platform.platform(),
            "kernelVersion": platform.release(),
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


class NodeAgent:
    def __init__(self, api: ApiClient, name: str) -> None:
        self._api = api
        self.name = name
        self._path = f"/api/v1/nodes/{name}"
        leases = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        self._lease_path = f"{leases}/{name}"
        self._ready_since = _time()

    async def register(self) -> None:
        """Creates the Node (or takes over one left by an earlier run) and reports it Ready."""
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": node_labels(self.name)},
        }
        try:
            await self._api.post("/api/v1/nodes", body)
        except ApiError as error:
            if error.status != 409:
                raise
            # An earlier run's Node: drop the taints the lifecycle controller put on it
            # while nobody renewed it.
            patch = {"metadata": {"labels": node_labels(self.name)}, "spec": {"taints": None}}
            await self._api.merge_patch(self._path, patch)
        await self._heartbeat()

    async def heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)  # the heartbeat's own period
            try:
                await self._heartbeat()
            except (TimeoutError, ApiError, aiohttp.ClientError) as error:
                log.warning("node %s heartbeat: %s", self.name, error)

    async def deregister(self) -> None:
        await self._api.delete(self._path)

    async def _heartbeat(self) -> None:
        status = node_status(self.name, self._ready_since)
        await self._api.merge_patch(f"{self._path}/status", {"status": status})
        await self._renew_lease()

    async def _renew_lease(self) -> None:
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_DURATION_S,
            "renewTime": _micro_time(),
        }
        if await self._api.get(self._lease_path) is None:
            node = await self._api.get(self._path)
            assert node is not None
            owner = {
                "apiVersion": "v1",
                "kind": "Node",
                "name": self.name,
                "uid": node["metadata"]["uid"],
            }
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "ownerReferences": [owner]},
                "spec": spec,
            }
            collection = self._lease_path.rsplit("/", 1)[0]
            await self._api.post(collection, body)
        else:
            await self._api.merge_patch(self._lease_path, {"spec": spec})

"""Brings a WorkerPool's children in line with its spec; shrinks only after draining.

    spec ──► the model's KV key Secret (created once, shared by the model's pools),
             Deployment (replicas), headless Service, PodDisruptionBudget,
             NetworkPolicy (when the operator is given the pods that call workers)
        └─ fewer replicas than running: drain the surplus pods first (drain.py);
           on servers before 1.22, delete them before the Deployment shrinks

Every step is idempotent (`KubeClient.apply`), so a reconcile interrupted by an
operator restart is simply run again: nothing is created twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.common.kube import KubeClient, KubeError, path_of, resource_path
from triskel.operator.builders.deployment import build_deployment
from triskel.operator.builders.engines import engine_pod
from triskel.operator.builders.kv_key import build_kv_key_secret, new_kv_key
from triskel.operator.builders.labels import owner_reference, selector_string
from triskel.operator.builders.network_policy import WorkerCallers, build_network_policy
from triskel.operator.builders.pdb import build_pdb
from triskel.operator.builders.server_features import ServerFeatures
from triskel.operator.builders.service import build_service
from triskel.operator.drain import DrainResult, WorkProbe, mark_draining, wait_drained
from triskel.operator.pods import (
    choose_victims,
    grpc_address,
    is_draining,
    pods_of_pool,
    serving_endpoints,
    undrain_patch,
)
from triskel.operator.worker_probe import work_in_flight

_log = logging.getLogger(__name__)

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """What every pool's reconcile needs besides the pool itself."""

    worker_image: str
    # What the cluster's API server accepts (from its version).
    features: ServerFeatures
    drain_timeout_s: float = 120.0
    # Who may call the workers: each pool gets a NetworkPolicy admitting them; None: no
    # policies (the chart's networkPolicy.enabled off).
    callers: WorkerCallers | None = None
    # The Secret with the workers' TLS certificate (builders/tls.py); None: plaintext.
    worker_tls_secret: str | None = None


class ChildRefused(Exception):
    """The API server refused one of the pool's children as built (its schema, an
    admission plugin, a quota); `error` is the server's answer."""

    def __init__(self, child: Json, error: KubeError) -> None:
        self.kind = child["kind"]
        self.name = child["metadata"]["name"]
        self.error = error
        super().__init__(f"the API server refused {self.kind} {self.name}: {error.message}")


@dataclass(slots=True)
class PoolOutcome:
    """The observed state after a reconcile: the status to write, and any drain result."""

    status: Json
    drain: DrainResult | None = None


class PoolReconciler:
    def __init__(
        self,
        kube: KubeClient,
        settings: PoolSettings,
        now: Callable[[], str],
        probe: WorkProbe = work_in_flight,
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._now = now
        self._probe = probe

    async def reconcile(self, body: Json, spec: WorkerPoolSpec) -> PoolOutcome:
        name = body["metadata"]["name"]
        namespace = body["metadata"]["namespace"]
        target = spec.replicas.count
        owner = owner_reference(body)
        features = self._settings.features
        desired = build_deployment(
            name,
            namespace,
            spec,
            self._settings.worker_image,
            owner,
            features,
            self._settings.worker_tls_secret,
        )
        # Before the pods exist: they wait for it to start (their key file is in it).
        await self.ensure_kv_key(namespace, spec)
        live = await self._kube.get(path_of(desired))
        drain = None
        if live is not None and _replicas(live) > target:
            drain = await self._drain_surplus(body, _replicas(live) - target)
            if not features.honours_pod_deletion_cost:
                await self._delete_drained(namespace, drain)
        else:
            # Pods marked for a scale-in that did not happen (the pool grew back, or the
            # operator stopped in between) go back into service.
            await self._undrain(body)
        deployment = await self._apply(desired)
        await self._apply(build_service(name, namespace, spec, owner))
        if self._settings.callers is not None:
            await self._apply(
                build_network_policy(name, namespace, spec, owner, self._settings.callers)
            )
        pdb = build_pdb(name, namespace, spec, owner, features)
        if pdb is not None:
            await self._apply(pdb)
        else:
            await self._kube.delete(self._pdb_path(namespace, name))
        return PoolOutcome(await self.observe(body, spec, deployment), drain)

    async def ensure_kv_key(self, namespace: str, spec: WorkerPoolSpec) -> None:
        """Creates the KV key Secret of the pool's model when it is missing (only for
        engines that read it). An existing Secret is kept as it is, unread: the operator
        may create Secrets but not read them, so a create answered "already exists" is
        how it learns the key is there. Deleting the Secret rotates the key: the next
        call creates a new one."""
        if not engine_pod(spec, self._settings.worker_image).reads_kv_auth_key:
            return
        secret = build_kv_key_secret(namespace, spec.model, new_kv_key())
        try:
            await self._kube.create(secret)
        except KubeError as error:
            if error.status == 409:  # AlreadyExists: never overwritten
                return
            if error.is_transient:
                raise
            raise ChildRefused(secret, error) from None

    async def _apply(self, child: Json) -> Json:
        try:
            return await self._kube.apply(child)
        except KubeError as error:
            if error.is_transient:
                raise
            raise ChildRefused(child, error) from None

    async def observe(self, body: Json, spec: WorkerPoolSpec, deployment: Json | None) -> Json:
        """The status fields the operator owns (conditions are merged by the caller)."""
        name = body["metadata"]["name"]
        pods = await self._pods(body)
        deployment_status = (deployment or {}).get("status", {})
        return {
            "replicas": deployment_status.get("replicas", 0),
            "readyReplicas": deployment_status.get("readyReplicas", 0),
            "desiredReplicas": spec.replicas.count,
            "selector": selector_string(name),
            "endpoints": serving_endpoints(pods),
        }

    async def remove(self, body: Json) -> DrainResult:
        """Drains every pod, then deletes the pool's children (deletion, not scale-in)."""
        name = body["metadata"]["name"]
        namespace = body["metadata"]["namespace"]
        pods = await self._pods(body)
        await self._publish_endpoints(body, [])
        await mark_draining(self._kube, pods, self._now())
        result = await wait_drained(pods, self._settings.drain_timeout_s, self._probe)
        await self._kube.delete(resource_path("apps/v1", "Deployment", namespace, name))
        await self._kube.delete(resource_path("v1", "Service", namespace, name))
        await self._kube.delete(self._pdb_path(namespace, name))
        if self._settings.callers is not None:
            await self._kube.delete(
                resource_path("networking.k8s.io/v1", "NetworkPolicy", namespace, name)
            )
        return result

    def _pdb_path(self, namespace: str, name: str) -> str:
        api_version = self._settings.features.pdb_api_version
        return resource_path(api_version, "PodDisruptionBudget", namespace, name)

    async def _drain_surplus(self, body: Json, surplus: int) -> DrainResult:
        pods = await self._pods(body)
        work = {p["metadata"]["name"]: await self._work(p) for p in pods}
        victims = choose_victims(pods, surplus, work)
        names = {v["metadata"]["name"] for v in victims}
        # Routers drop the victims first (they watch status.endpoints), then they drain.
        await self._publish_endpoints(
            body, serving_endpoints([p for p in pods if p["metadata"]["name"] not in names])
        )
        await mark_draining(self._kube, victims, self._now())
        result = await wait_drained(victims, self._settings.drain_timeout_s, self._probe)
        _log.info(
            "pool %s: drained %s, timed out %s",
            body["metadata"]["name"],
            result.drained,
            result.timed_out,
        )
        return result

    async def _delete_drained(self, namespace: str, drain: DrainResult) -> None:
        """Before 1.22 a ReplicaSet ignores pod-deletion-cost and would remove pods of its
        own choosing, leaving a drained one behind. Deleted first (the grace period and
        preStop still apply), they are no longer active when the Deployment shrinks. A
        ReplicaSet quick enough to replace one in between removes that new pod again when
        it shrinks: unscheduled and unready pods go first."""
        for name in [*drain.drained, *drain.timed_out]:
            await self._kube.delete(resource_path("v1", "Pod", namespace, name))

    async def _undrain(self, body: Json) -> None:
        for pod in await self._pods(body):
            if is_draining(pod):
                metadata = pod["metadata"]
                path = resource_path("v1", "Pod", metadata["namespace"], metadata["name"])
                await self._kube.merge_patch(path, undrain_patch())

    async def _work(self, pod: Json) -> int | None:
        address = grpc_address(pod)
        return None if address is None else await self._probe(address)

    async def _pods(self, body: Json) -> list[Json]:
        namespace = body["metadata"]["namespace"]
        # Filtered here rather than by label selector: simple, and the same everywhere.
        pods = await self._kube.list(resource_path("v1", "Pod", namespace))
        return pods_of_pool(pods, body["metadata"]["name"])

    async def _publish_endpoints(self, body: Json, endpoints: list[str]) -> None:
        path = path_of(body) + "/status"
        await self._kube.merge_patch(path, {"status": {"endpoints": endpoints}})


def _replicas(deployment: Json) -> int:
    replicas: int = deployment.get("spec", {}).get("replicas", 1)
    return replicas

"""A WorkerPool's Deployment: its engine's container in the pod shape every pool shares.

How a pod leaves (rollout, eviction, node drain; the operator's own scale-in
drains pods before it shrinks the Deployment, see `operator/drain.py`):

    deleted ──► not ready: the operator drops it from status.endpoints (within its
    │           10 s status refresh) and routers stop picking it
    ├─ preStop: sleep 15 s ── in-flight requests go on; new ones stop arriving
    ├─ SIGTERM ── the engine stops taking requests and finishes the ones it has
    └─ 120 s after deletion: SIGKILL

120 s covers the 15 s wait plus a long generation (4k tokens at 25 ms per token)
and equals the operator's default drain timeout, so every path gives a request
the same time to finish.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.engines import EnginePod, engine_pod
from triskel.operator.builders.engines.base import DOWNWARD_ENV
from triskel.operator.builders.kv_key import kv_key_mount, kv_key_volume
from triskel.operator.builders.labels import child_metadata, pool_labels, pool_selector
from triskel.operator.builders.security import (
    container_security_context,
    pod_security_context,
    scratch,
)
from triskel.operator.builders.server_features import ServerFeatures
from triskel.operator.builders.tls import (
    plaintext_probe,
    worker_tls_args,
    worker_tls_mount,
    worker_tls_volume,
)

Json = dict[str, Any]

CONTAINER_NAME = "worker"
TERMINATION_GRACE_S = 120
PRE_STOP_SLEEP_S = 15
GPU_RESOURCE = "nvidia.com/gpu"
# Image pulls happen before the startup probe's clock starts; GPU images are ~10 GB.
_IMAGE_PULL_BUDGET_S = 600
_STARTUP_PERIOD_S = 10
_SHM_VOLUME = "dshm"


def build_deployment(
    pool_name: str,
    namespace: str,
    spec: WorkerPoolSpec,
    image: str,
    owner: Json,
    features: ServerFeatures,
    tls_secret: str | None = None,
) -> Json:
    """The Deployment running pool `pool_name`; `image` is the Triskel image (mock workers),
    `features` what the cluster's API server accepts, `tls_secret` the Secret with the
    workers' TLS certificate (builders/tls.py; None: plaintext).

    ValueError names the spec field the pool's engine cannot run as written.
    """
    engine = engine_pod(spec, image)
    if tls_secret is not None and engine.takes_tls_flags:
        engine = dataclasses.replace(
            engine,
            args=(*engine.args, *worker_tls_args()),
            health_check=plaintext_probe(engine.health_check),
        )
    else:
        tls_secret = None
    template_metadata: Json = {"labels": pool_labels(pool_name, spec)}
    if engine.metrics_port is not None:
        template_metadata["annotations"] = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(engine.metrics_port),
            "prometheus.io/path": "/metrics",
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(pool_name, namespace, spec, owner),
        "spec": {
            "replicas": spec.replicas.count,
            "selector": {"matchLabels": pool_selector(pool_name)},
            # A new pod must be ready before an old one goes: capacity never dips.
            # (A GPU pool needs room for one extra replica to roll.)
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            # Only reported (condition Progressing=False), never acted on by Kubernetes.
            "progressDeadlineSeconds": engine.startup_budget_s + _IMAGE_PULL_BUDGET_S,
            "template": {
                "metadata": template_metadata,
                "spec": _pod_spec(pool_name, spec, engine, features, tls_secret),
            },
        },
    }


def _pod_spec(
    pool_name: str,
    spec: WorkerPoolSpec,
    engine: EnginePod,
    features: ServerFeatures,
    tls_secret: str | None,
) -> Json:
    pod: Json = {
        "containers": [_container(spec, engine, features, tls_secret is not None)],
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        # Non-root, seccomp on (builders/security.py).
        "securityContext": pod_security_context(spec),
        # Workers call no Kubernetes API.
        "automountServiceAccountToken": False,
        # Service links would put env like VLLM_PORT=tcp://... (from a Service named
        # "vllm") into the engine, which reads VLLM_* variables as its own settings.
        "enableServiceLinks": False,
        # Replicas on different nodes: losing a node loses one replica, not the pool.
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": pool_selector(pool_name)},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
    }
    if spec.resources.gpus > 0:
        # GPU nodes are commonly tainted so that only pods asking for GPUs land there.
        pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    volumes = [scratch(engine).volume]
    if engine.needs_shared_memory:
        volumes.append({"name": _SHM_VOLUME, "emptyDir": {"medium": "Memory"}})
    if engine.reads_kv_auth_key:
        volumes.append(kv_key_volume(spec.model))
    if tls_secret is not None:
        volumes.append(worker_tls_volume(tls_secret))
    pod["volumes"] = volumes
    return pod


def _container(
    spec: WorkerPoolSpec, engine: EnginePod, features: ServerFeatures, has_tls: bool
) -> Json:
    container: Json = {
        "name": CONTAINER_NAME,
        "image": engine.image,
        "command": list(engine.command),
        "args": list(engine.args),
        # POD_NAME and POD_IP come first: later env values and args refer to them.
        "env": copy.deepcopy([*DOWNWARD_ENV, *engine.env, *scratch(engine).env]),
        "ports": [
            {"name": port.name, "containerPort": port.port, "protocol": "TCP"}
            for port in engine.ports
        ],
        # Startup allows for loading; liveness then restarts an engine that stays
        # unhealthy for a minute (a long prefill can stall its server for seconds).
        "startupProbe": _probe(
            engine,
            features,
            period_s=_STARTUP_PERIOD_S,
            failures=math.ceil(engine.startup_budget_s / _STARTUP_PERIOD_S),
        ),
        "readinessProbe": _probe(engine, features, period_s=5, failures=3),
        "livenessProbe": _probe(engine, features, period_s=10, failures=6),
        "lifecycle": {"preStop": _pre_stop(features)},
        "securityContext": container_security_context(spec, engine),
    }
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    mounts = [scratch(engine).mount]
    if engine.needs_shared_memory:
        mounts.append({"name": _SHM_VOLUME, "mountPath": "/dev/shm"})
    if engine.reads_kv_auth_key:
        mounts.append(kv_key_mount())
    if has_tls:
        mounts.append(worker_tls_mount())
    container["volumeMounts"] = mounts
    return container


def _probe(engine: EnginePod, features: ServerFeatures, period_s: int, failures: int) -> Json:
    action = copy.deepcopy(engine.health_check)
    if "grpc" in action and not features.has_grpc_probes:
        # Ready once the port accepts connections: the worker opens it only when serving.
        action = {"tcpSocket": {"port": action["grpc"]["port"]}}
    return {
        **action,
        "periodSeconds": period_s,
        "failureThreshold": failures,
        "timeoutSeconds": 5,
    }


def _pre_stop(features: ServerFeatures) -> Json:
    if features.has_pre_stop_sleep:
        return {"sleep": {"seconds": PRE_STOP_SLEEP_S}}
    return {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_S)]}}


def _resources(spec: WorkerPoolSpec) -> Json:
    """Requests equal limits for CPU and memory (what the pool asked for, no more);
    GPUs, an extended resource, are limits only (Kubernetes sets requests to match)."""
    amounts = {
        name: value
        for name, value in (("cpu", spec.resources.cpu), ("memory", spec.resources.memory))
        if value is not None
    }
    limits: Json = dict(amounts)
    if spec.resources.gpus > 0:
        # A string, as the API server returns it: an int would differ on every compare.
        limits[GPU_RESOURCE] = str(spec.resources.gpus)
    resources: Json = {}
    if amounts:
        resources["requests"] = amounts
    if limits:
        resources["limits"] = limits
    return resources

"""A WorkerPool's NetworkPolicy: who may open a connection to the pool's pods.

    serving ports               ◄── router pods   requests
      (grpc, frames, http)      ◄── operator pod  drain probes (StreamStats on grpc),
                                                  elastic EP (/scale_elastic_ep on http)
    every port                  ◄── worker pods of the same model in the namespace:
                                    KV transfers (the pods that share the model's KV key)
    anything else               ✗  (kubelet probes come from the node, which CNIs admit)

Only ingress is restricted: egress (DNS, the model hub, the KV peers) stays open.

KV is allowed on every port, not on the `kv` port alone, because the data planes pick
ports at run time: the mock's tcp, Mooncake and NCCL listeners take ports the kernel
picks and advertise them in each handle; NIXL (UCX) and Mooncake behind vLLM and SGLang
open transfer ports of their own beside the declared bootstrap / side-channel port. A
policy can name ports only, so "same model's workers" is the narrowest rule that lets
KV move. RDMA traffic never enters the kernel's IP stack: no NetworkPolicy filters it.

Built only when the operator runs with `--network-policy-router-labels` and
`--network-policy-operator-labels` (the chart's `networkPolicy.enabled`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.engines import engine_ports
from triskel.operator.builders.labels import (
    APP_NAME,
    COMPONENT_LABEL,
    MODEL_LABEL,
    NAME_LABEL,
    WORKER_COMPONENT,
    child_metadata,
    label_value,
    pool_selector,
)

Json = dict[str, Any]

KV_PORT_NAME = "kv"
# Set on every namespace by the API server from Kubernetes 1.21.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class WorkerCallers:
    """The pods allowed to call workers' serving ports, by their labels; both run in
    `namespace` (the chart's release namespace)."""

    namespace: str
    router_labels: Mapping[str, str] = field(default_factory=dict)
    operator_labels: Mapping[str, str] = field(default_factory=dict)


def build_network_policy(
    pool_name: str, namespace: str, spec: WorkerPoolSpec, owner: Json, callers: WorkerCallers
) -> Json:
    """The NetworkPolicy admitting to pool `pool_name`'s pods only `callers` on the
    serving ports and the model's workers on any port."""
    serving = [p for p in engine_ports(spec) if p.name != KV_PORT_NAME]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(pool_name, namespace, spec, owner),
        "spec": {
            "podSelector": {"matchLabels": pool_selector(pool_name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        _peer(callers.router_labels, callers.namespace, namespace),
                        _peer(callers.operator_labels, callers.namespace, namespace),
                    ],
                    "ports": [{"protocol": "TCP", "port": port.name} for port in serving],
                },
                {"from": [{"podSelector": {"matchLabels": model_workers(spec.model)}}]},
            ],
        },
    }


def model_workers(model: str) -> dict[str, str]:
    """The labels of every worker pod of `model` (any pool, any role)."""
    return {
        NAME_LABEL: APP_NAME,
        COMPONENT_LABEL: WORKER_COMPONENT,
        MODEL_LABEL: label_value(model),
    }


def parse_labels(text: str, flag: str) -> dict[str, str]:
    """`k=v,k2=v2` as a dict; ValueError naming `flag` and the bad part."""
    labels: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key:
            raise ValueError(f"{flag}: expected key=value[,key=value...], got {part!r}")
        labels[key] = value
    return labels


def worker_callers(
    namespace: str, router_labels: str | None, operator_labels: str | None
) -> WorkerCallers | None:
    """The callers the operator's two `--network-policy-*-labels` flags name, or None when
    neither is given; ValueError when one is missing or malformed."""
    router_flag, operator_flag = (
        "--network-policy-router-labels",
        "--network-policy-operator-labels",
    )
    if router_labels is None and operator_labels is None:
        return None
    if router_labels is None or operator_labels is None:
        given, missing = (
            (router_flag, operator_flag)
            if operator_labels is None
            else (operator_flag, router_flag)
        )
        raise ValueError(f"{given} needs {missing}: a policy must admit both")
    return WorkerCallers(
        namespace,
        parse_labels(router_labels, router_flag),
        parse_labels(operator_labels, operator_flag),
    )


def _peer(labels: Mapping[str, str], peer_namespace: str, namespace: str) -> Json:
    peer: Json = {"podSelector": {"matchLabels": dict(labels)}}
    if peer_namespace != namespace:
        # A podSelector alone means the policy's own namespace.
        peer["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: peer_namespace}}
    return peer

"""A WorkerPool's headless Service: one DNS name for the pool's ready pods.

`<pool>.<namespace>.svc.<cluster domain>` resolves to the IP of every ready pod
(no cluster IP, no kube-proxy balancing): the router picks each worker itself, so
it needs every address, never one chosen for it. Pods that are not ready are left
out (`publishNotReadyAddresses: false`), so a starting or failing worker never
receives traffic through this name.
"""

from __future__ import annotations

from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.engines import engine_ports
from triskel.operator.builders.labels import child_metadata, pool_selector

Json = dict[str, Any]


def build_service(pool_name: str, namespace: str, spec: WorkerPoolSpec, owner: Json) -> Json:
    """The headless Service selecting pool `pool_name`'s pods, with its engine's ports."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(pool_name, namespace, spec, owner),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": False,
            "selector": pool_selector(pool_name),
            "ports": [
                {"name": port.name, "port": port.port, "targetPort": port.name, "protocol": "TCP"}
                for port in engine_ports(spec)
            ],
        },
    }


def service_dns_name(pool_name: str, namespace: str, cluster_domain: str = "cluster.local") -> str:
    """The fully qualified name of pool `pool_name`'s Service (no search-path lookups)."""
    return f"{pool_name}.{namespace}.svc.{cluster_domain}"

"""A WorkerPool's PodDisruptionBudget: voluntary evictions take one pod at a time.

Node drains and cluster-autoscaler scale-downs evict through this budget, so a
pool never loses more than one replica to them at once; the operator's own
scale-in does not evict (it drains, then shrinks the Deployment).
"""

from __future__ import annotations

from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.labels import child_metadata, pool_selector
from triskel.operator.builders.server_features import ServerFeatures

Json = dict[str, Any]


def build_pdb(
    pool_name: str, namespace: str, spec: WorkerPoolSpec, owner: Json, features: ServerFeatures
) -> Json | None:
    """The budget for pool `pool_name`, or None when the pool runs 0 or 1 replicas.

    With one replica, `maxUnavailable: 1` would allow evicting it anyway, and any
    stricter budget (`minAvailable: 1`) would block every node drain and autoscaler
    scale-down for good: no budget is the honest answer. With none there is nothing
    to protect. The caller deletes a budget left from a larger size.
    """
    if spec.replicas.count <= 1:
        return None
    budget: Json = {
        "maxUnavailable": 1,
        "selector": {"matchLabels": pool_selector(pool_name)},
    }
    if features.pdb_api_version == "policy/v1":
        # A crash-looping pod does not count as available; without this it could
        # never be evicted, and a drain of its node would wait forever.
        budget["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {
        "apiVersion": features.pdb_api_version,
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(pool_name, namespace, spec, owner),
        "spec": budget,
    }

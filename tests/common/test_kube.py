"""The operator's API client: paths, and the drift that decides whether to patch."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.kube import drift, path_of, resource_path


def test_paths_of_core_and_grouped_kinds() -> None:
    assert resource_path("v1", "Service", "ns", "s") == "/api/v1/namespaces/ns/services/s"
    assert resource_path("apps/v1", "Deployment", "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    body = {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"namespace": "ns", "name": "p"},
    }
    assert path_of(body) == "/apis/triskel.io/v1alpha1/namespaces/ns/workerpools/p"
    with pytest.raises(ValueError, match="does not manage"):
        resource_path("v1", "Secret", "ns")


def test_drift_compares_only_what_the_desired_object_names() -> None:
    desired = {"spec": {"replicas": 2, "template": {"containers": [{"name": "w", "image": "i"}]}}}
    # The server added defaults (inside list items too): no drift, no patch.
    live: dict[str, Any] = {
        "spec": {
            "replicas": 2,
            "paused": False,
            "template": {"containers": [{"name": "w", "image": "i", "imagePullPolicy": "A"}]},
        },
        "status": {"replicas": 2},
    }
    assert drift(desired, live) is None
    live["spec"]["replicas"] = 3
    assert drift(desired, live) == {"spec": {"replicas": 2}}
    live["spec"]["template"]["containers"][0]["image"] = "old"
    # A list item really differs: the whole list is sent (merge patches replace lists).
    assert drift(desired, live)["spec"]["template"] == desired["spec"]["template"]

"""The operator's API client: paths, and the drift that decides whether to patch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from triskel.common.kube import drift, kubeconfig_credentials, path_of, resource_path


def test_paths_of_core_and_grouped_kinds() -> None:
    assert resource_path("v1", "Service", "ns", "s") == "/api/v1/namespaces/ns/services/s"
    assert resource_path("apps/v1", "Deployment", "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    body = {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"namespace": "ns", "name": "p"},
    }
    assert path_of(body) == "/apis/triskel.io/v1alpha1/namespaces/ns/workerpools/p"
    # The KV auth keys: created by the operator, never read.
    assert resource_path("v1", "Secret", "ns", "k") == "/api/v1/namespaces/ns/secrets/k"
    with pytest.raises(ValueError, match="does not manage"):
        resource_path("v1", "ServiceAccount", "ns")


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


def test_kubeconfig_credentials_follow_the_current_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The router outside a pod (or in the process kubelet's pods) logs in like kopf does.
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
        "clusters:\n"
        "- {name: a, cluster: {server: 'https://127.0.0.1:1'}}\n"
        "- {name: b, cluster: {server: 'https://127.0.0.1:2', certificate-authority: /ca.crt}}\n"
        "users: [{name: u, user: {token: secret-token}}]\n"
        "contexts:\n"
        "- {name: a, context: {cluster: a, user: u}}\n"
        "- {name: b, context: {cluster: b, user: u}}\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    credentials = kubeconfig_credentials()
    assert credentials is not None
    assert (credentials.server, credentials.token, credentials.ca_path) == (
        "https://127.0.0.1:2",
        "secret-token",
        "/ca.crt",
    )


def test_no_kubeconfig_means_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either
    assert kubeconfig_credentials() is None

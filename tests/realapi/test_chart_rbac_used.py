"""The operator with the chart's own RBAC: never refused, and every rule it is granted used.

The chart's ServiceAccount, Roles and bindings are applied to the real API server;
`triskel operator` runs with that ServiceAccount's token, cluster-wide and namespaced,
through a scenario that walks every path that calls the API (create, update, scale-in
with drain, a warning, delete). The API server's audit log then says which calls the
operator made: none may have been refused (403), and each granted rule must appear.
OwnerReferencesPermissionEnforcement is on, as on OpenShift and hardened clusters.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from triskel.common.router_cluster import ROUTER_CONFIG_MAP_NAME
from triskel.operator.handlers.autoscaling import CANCELLATION_TIMEOUT_S

from support.helm import render
from support.kube_rig import RealApi
from support.loaded_router import LoadedRouter
from support.realapi_operator import (
    condition,
    get,
    operator_process,
    service_account_kubeconfig,
    wait_for,
)

pytestmark = pytest.mark.realapi

REPO = Path(__file__).resolve().parents[2]
PD_EXAMPLE = REPO / "manifests" / "examples" / "pd-mock.yaml"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
OPERATOR_ACCOUNT = "triskel-operator"
# Checked by the admission plugin when a child names its owner with blockOwnerDeletion,
# never called as a request: the audit log cannot show it, the absence of 403s does.
CHECKED_BY_ADMISSION = {
    ("triskel.io", f"{plural}/finalizers", "update")
    for plural in ("workerpools", "servinggraphs", "routingpolicies")
}

Call = tuple[str, str, str]  # (API group, resource[/subresource], verb)


def granted(manifests: list[dict[str, Any]], account: str) -> set[Call]:
    """Every (group, resource, verb) the chart's bindings give ServiceAccount `account`."""
    roles = {(m["kind"], m["metadata"]["name"]): m for m in manifests if "rules" in m}
    calls: set[Call] = set()
    for binding in manifests:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["name"] == account for s in binding["subjects"]):
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for rule in role["rules"]:
            calls |= {
                (group, resource, verb)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    return calls


def calls_made(api: RealApi, username: str) -> tuple[set[Call], list[dict[str, Any]]]:
    """What `username` called (resource requests only), and the calls RBAC refused.

    Only RBAC's own decision counts: a namespace being deleted by another test also
    answers 403 (NamespaceTerminating), and says nothing about the chart's rules."""
    made: set[Call] = set()
    refused = []
    decided = 0
    for event in api.audit_events():
        if event.get("user", {}).get("username") != username:
            continue
        decision = event.get("annotations", {}).get("authorization.k8s.io/decision")
        decided += decision is not None
        if decision == "forbid":
            refused.append(event)
        ref = event.get("objectRef")
        if ref is None:  # discovery, /version
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        made.add((ref.get("apiGroup", ""), resource, event["verb"]))
    assert decided, f"the audit log records no authorization decision for {username}"
    return made, refused


def _getter(api: RealApi, kind: str, name: str, namespace: str) -> Callable[[], Any]:
    return lambda: get(api, kind, name, namespace)


class StandInRouter:
    """The router's /metrics on loopback (`LoadedRouter`), with far more load at every
    scrape than the example's pools serve: the planner scales up."""

    def __init__(self) -> None:
        loaded = LoadedRouter("llama-3.1-8b", 500)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, content_type = loaded.scrape()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandInRouter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def autoscale_once(api: RealApi, namespace: str) -> None:
    """Autoscaling on the graph until the planner scales a pool through its scale
    subresource, then off again (so the steps below scale by hand alone)."""
    with StandInRouter() as router:
        spec = {"spec": {"autoscaling": {"metricsUrl": router.url, "intervalS": 1}}}
        api.kubectl(
            "patch", "sg", "llama", "--type", "merge", "-p", json.dumps(spec), namespace=namespace
        )
        wait_for(
            lambda: (
                (get(api, "wp", "llama-decode", namespace) or {})["spec"]["replicas"].get("desired")
                == 4
            ),
            timeout_s=90,
            what="the planner scaled the decode pool to its max",
        )
        off = {"spec": {"autoscaling": None}}
        api.kubectl(
            "patch", "sg", "llama", "--type", "merge", "-p", json.dumps(off), namespace=namespace
        )
    # kopf stops the graph's daemon once the spec has no autoscaling, within its
    # cancellation timeout; after that nothing scales the pools but the steps below.
    time.sleep(CANCELLATION_TIMEOUT_S + 1.0)


def walk_every_path(api: RealApi, namespace: str) -> None:
    """Create, update, autoscale, scale in with drain, warn, delete: every kind of call
    the operator makes."""
    api.kubectl("apply", "-f", str(PD_EXAMPLE), namespace=namespace)
    for name in ("llama-prefill", "llama-decode"):
        wait_for(_getter(api, "pdb", name, namespace), timeout_s=60, what=f"{name} budget")
    wait_for(lambda: get(api, "configmap", ROUTER_CONFIG_MAP_NAME, namespace), what="config")
    autoscale_once(api, namespace)
    # A new model: every child's labels drift (patch), and the graph warns (event).
    patch = {"spec": {"model": "other-model"}}
    api.kubectl(
        "patch",
        "wp",
        "llama-prefill",
        "--type",
        "merge",
        "-p",
        json.dumps(patch),
        namespace=namespace,
    )
    wait_for(
        lambda: (
            condition(get(api, "sg", "llama", namespace), "Degraded").get("reason")
            == "ModelMismatch"
        ),
        what="graph warns of the model",
    )
    wait_for(
        lambda: (
            (get(api, "service", "llama-prefill", namespace) or {})["metadata"]["labels"].get(
                "triskel.io/model"
            )
            == "other-model"
        ),
        what="service relabelled",
    )
    # Scale-in: the surplus pod is marked draining, the budget goes below two replicas.
    api.kubectl("scale", "wp/llama-decode", "--replicas", "1", namespace=namespace)
    wait_for(lambda: get(api, "pdb", "llama-decode", namespace) is None, what="budget removed")
    # The Deployment shrinks only after the surplus pod was marked (a Pending pod then
    # goes at once, so the mark itself cannot be waited on).
    wait_for(
        lambda: (get(api, "deployment", "llama-decode", namespace) or {})["spec"]["replicas"] == 1,
        what="deployment shrunk after the drain mark",
    )
    api.kubectl("delete", "wp", "llama-prefill", "--wait=false", namespace=namespace)
    wait_for(lambda: get(api, "wp", "llama-prefill", namespace) is None, what="pool deleted")


@pytest.mark.parametrize("scope", ["cluster-wide", "namespaced"])
def test_the_operator_with_the_charts_rbac_is_never_refused_and_uses_every_rule(
    real_api: RealApi, namespace: str, tmp_path: Path, scope: str
) -> None:
    values = {"operator": {"watchNamespaces": [namespace]}} if scope == "namespaced" else {}
    manifests = [
        m
        for m in render(values, namespace=namespace, kube_version=real_api.server_version())
        if m["kind"] in RBAC_KINDS
    ]
    real_api.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}),
    )
    cluster_scoped = [m for m in manifests if m["kind"].startswith("Cluster")]
    try:
        kubeconfig = service_account_kubeconfig(
            real_api, namespace, OPERATOR_ACCOUNT, tmp_path / "operator.kubeconfig"
        )
        args = ["--router-namespace", namespace]
        if scope == "namespaced":
            args += ["--namespace", namespace]
        with operator_process(kubeconfig, args, tmp_path / "operator.log"):
            walk_every_path(real_api, namespace)
        made, refused = calls_made(
            real_api, f"system:serviceaccount:{namespace}:{OPERATOR_ACCOUNT}"
        )
        assert refused == [], [
            (e["verb"], e.get("objectRef"), e["annotations"].get("authorization.k8s.io/reason"))
            for e in refused
        ]
        unused = granted(manifests, OPERATOR_ACCOUNT) - made - CHECKED_BY_ADMISSION
        assert unused == set(), f"granted but never used: {sorted(unused)}"
    finally:
        for manifest in cluster_scoped:
            real_api.kubectl(
                "delete", manifest["kind"], manifest["metadata"]["name"], "--wait=false"
            )

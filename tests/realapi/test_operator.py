"""`triskel operator` against a real API server (1.20 built-in APIs, 1.36 CRDs).

kube-controller-manager runs (Deployments make ReplicaSets and Pods, garbage
collection works); no kubelet does, so pods stay Pending and pools never become
ready. What this layer shows, and kmock could not: the children the server really
accepts, CEL and schema defaults, the scale subresource, events, garbage collection.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from triskel.common.router_cluster import ROUTER_CONFIG_MAP_NAME

from support.kube_rig import RealApi
from support.realapi_operator import (
    condition,
    degraded_for,
    get,
    items,
    operator_process,
    wait_for,
    warning_events,
)

pytestmark = pytest.mark.realapi

REPO = Path(__file__).resolve().parents[2]
PD_EXAMPLE = REPO / "manifests" / "examples" / "pd-mock.yaml"
CHILDREN = ("deployment", "service", "poddisruptionbudget")


def pool(name: str, **spec: Any) -> str:
    body = {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": {"role": "decode", "model": "m", "replicas": {"min": 2, "max": 4}, **spec},
    }
    return json.dumps(body)


@contextlib.contextmanager
def operator(api: RealApi, namespace: str, log: Path) -> Iterator[Any]:
    """The operator watching `namespace` only, as the rig's admin, status every second."""
    args = ["--namespace", namespace, "--router-namespace", namespace]
    with operator_process(api.kubeconfig, [*args, "--status-interval-s", "1"], log) as process:
        yield process


def children_of(api: RealApi, name: str, namespace: str) -> Callable[[], bool]:
    return lambda: all(get(api, kind, name, namespace) for kind in CHILDREN)


def owned_by(child: dict[str, Any], owner: dict[str, Any]) -> bool:
    references: list[dict[str, Any]] = child["metadata"].get("ownerReferences", [])
    return references == [
        {
            "apiVersion": "triskel.io/v1alpha1",
            "kind": "WorkerPool",
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_the_example_gets_owned_children_status_and_router_config(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    with operator(real_api, namespace, tmp_path / "operator.log"):
        real_api.kubectl("apply", "-f", str(PD_EXAMPLE), namespace=namespace)
        # Published once, promptly: two handlers racing to create it once cost a 409
        # and kopf's 60 s retry.
        wait_for(
            lambda: (
                "llama-3.1-8b"
                in json.dumps(get(real_api, "configmap", ROUTER_CONFIG_MAP_NAME, namespace) or {})
            ),
            timeout_s=20,
            what="router config published",
        )
        for name in ("llama-prefill", "llama-decode"):
            wait_for(children_of(real_api, name, namespace), what=f"{name} children")
            owner = get(real_api, "wp", name, namespace)
            assert owner is not None
            for kind in CHILDREN:
                child = get(real_api, kind, name, namespace)
                assert child is not None and owned_by(child, owner), (kind, child)
            # 1.20 serves budgets in policy/v1beta1 only: the operator asked the server.
            budget = get(real_api, "poddisruptionbudget", name, namespace)
            assert budget is not None and budget["apiVersion"] == "policy/v1beta1"

            def settled(n: str = name) -> dict[str, Any] | None:
                body = get(real_api, "wp", n, namespace) or {}
                status = body.get("status", {})
                generation = body.get("metadata", {}).get("generation")
                return body if status.get("observedGeneration") == generation else None

            body = wait_for(settled, what=f"{name} observed")
            status = body["status"]
            # Pods stay Pending here (no kubelet): not ready, never degraded.
            assert (status["desiredReplicas"], status["readyReplicas"]) == (2, 0)
            assert condition(body, "Ready")["reason"] == "NotAllReady"
            assert condition(body, "Degraded")["status"] == "False"
        # The prefill pool had no `desired`: the operator wrote `min` for the scale subresource.
        prefill = get(real_api, "wp", "llama-prefill", namespace)
        assert prefill is not None and prefill["spec"]["replicas"]["desired"] == 2
        policy = wait_for(
            lambda: (
                condition(get(real_api, "rp", "triskel-default", namespace), "Ready").get("status")
                == "True"
            )
        )
        assert policy
        graph = get(real_api, "sg", "llama", namespace)
        assert condition(graph, "Degraded").get("status") == "False"


def test_kubectl_scale_resizes_the_deployment_and_scale_in_drops_the_budget(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    with operator(real_api, namespace, tmp_path / "operator.log"):
        two = pool("decode", replicas={"min": 1, "max": 4, "desired": 2})
        real_api.kubectl("apply", "-f", "-", input=two, namespace=namespace)
        wait_for(lambda: get(real_api, "pdb", "decode", namespace))
        real_api.kubectl("scale", "wp/decode", "--replicas", "3", namespace=namespace)
        wait_for(
            lambda: (
                (get(real_api, "deployment", "decode", namespace) or {})["spec"]["replicas"] == 3
            )
        )

        def observed(replicas: int) -> bool:
            body = get(real_api, "wp", "decode", namespace) or {}
            status = body.get("status", {})
            return bool(
                status.get("desiredReplicas") == replicas
                and status.get("observedGeneration") == body["metadata"]["generation"]
            )

        wait_for(lambda: observed(3), what="status after scale-out")
        # One replica needs no budget (it could only block node drains); the surplus
        # pods are marked draining before the Deployment shrinks.
        real_api.kubectl("scale", "wp/decode", "--replicas", "1", namespace=namespace)
        wait_for(lambda: get(real_api, "pdb", "decode", namespace) is None, what="budget gone")
        wait_for(
            lambda: (
                (get(real_api, "deployment", "decode", namespace) or {})["spec"]["replicas"] == 1
            )
        )
        wait_for(lambda: observed(1), what="status after scale-in")


def test_a_child_the_server_refuses_degrades_the_pool_with_one_warning_until_fixed(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    with operator(real_api, namespace, tmp_path / "operator.log"):
        # The WorkerPool schema takes any string; the Deployment's quantity parser does not.
        lots = pool("lots", resources={"cpu": "lots"})
        real_api.kubectl("apply", "-f", "-", input=lots, namespace=namespace)
        degraded = wait_for(lambda: degraded_for(real_api, "wp", "lots", namespace, "ChildRefused"))
        message = degraded["message"]
        assert message.startswith(
            f"WorkerPool {namespace}/lots: the API server refused Deployment lots: "
        ), message
        assert "lots" in message.split("refused Deployment lots:", 1)[1]
        ready = condition(get(real_api, "wp", "lots", namespace), "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ChildRefused")
        events = wait_for(lambda: warning_events(real_api, namespace, "lots"))
        assert [e["reason"] for e in events] == ["ChildRefused"]
        assert events[0]["message"] == message
        # Several status rounds (1 s) later the problem still stands, reported once.
        operator_log = tmp_path / "operator.log"
        rounds = operator_log.read_text().count("Timer 'status' succeeded")
        wait_for(lambda: operator_log.read_text().count("Timer 'status' succeeded") >= rounds + 3)
        still = condition(get(real_api, "wp", "lots", namespace), "Degraded")
        assert (still["status"], still["reason"]) == ("True", "ChildRefused")
        assert len(warning_events(real_api, namespace, "lots")) == 1
        # Fixing the spec heals the pool at its next reconcile.
        fix = {"spec": {"resources": {"cpu": "1"}}}
        real_api.kubectl(
            "patch", "wp", "lots", "--type", "merge", "-p", json.dumps(fix), namespace=namespace
        )
        wait_for(
            lambda: (
                condition(get(real_api, "wp", "lots", namespace), "Degraded").get("status")
                == "False"
            ),
            what="healed",
        )
        assert get(real_api, "deployment", "lots", namespace) is not None


def test_an_unrunnable_spec_stays_reported_while_the_status_timer_runs(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    with operator(real_api, namespace, log):
        # The schema allows it; the vLLM engine has no encode-only mode.
        body = pool("enc", role="encode", engine={"type": "vllm"}, resources={"gpus": 1})
        real_api.kubectl("apply", "-f", "-", input=body, namespace=namespace)
        wait_for(
            lambda: (
                condition(get(real_api, "wp", "enc", namespace), "Degraded").get("reason")
                == "InvalidSpec"
            )
        )
        rounds = log.read_text().count("Timer 'status' succeeded")
        wait_for(lambda: log.read_text().count("Timer 'status' succeeded") >= rounds + 3)
        pool_body = get(real_api, "wp", "enc", namespace)
        degraded = condition(pool_body, "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
        assert condition(pool_body, "Ready")["status"] == "False"
        assert "role: encode" in degraded["message"], degraded
        assert [e["reason"] for e in warning_events(real_api, namespace, "enc")] == ["InvalidSpec"]
        assert get(real_api, "deployment", "enc", namespace) is None


def test_an_operator_killed_mid_reconcile_resumes_without_duplicates(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    with operator(real_api, namespace, log) as first:
        real_api.kubectl("apply", "-f", "-", input=pool("p1"), namespace=namespace)
        wait_for(lambda: get(real_api, "deployment", "p1", namespace), timeout_s=30)
        first.send_signal(signal.SIGKILL)  # no chance to finish the Service or the budget
        first.wait()
    with operator(real_api, namespace, log):
        wait_for(lambda: all(get(real_api, k, "p1", namespace) for k in CHILDREN))
        owner = get(real_api, "wp", "p1", namespace)
        assert owner is not None
        for kind in CHILDREN:
            children = items(real_api, kind, namespace)
            assert [c["metadata"]["name"] for c in children] == ["p1"], kind
            assert owned_by(children[0], owner)


def test_delete_removes_the_children_and_the_collector_their_pods(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    with operator(real_api, namespace, tmp_path / "operator.log"):
        real_api.kubectl("apply", "-f", "-", input=pool("gone"), namespace=namespace)
        wait_for(lambda: len(items(real_api, "pods", namespace)) == 2, what="pods created")
        assert items(real_api, "replicasets", namespace)
        real_api.kubectl("delete", "wp", "gone", "--wait=false", namespace=namespace)
        wait_for(lambda: get(real_api, "wp", "gone", namespace) is None, what="finalizer done")
        for kind in CHILDREN:
            assert get(real_api, kind, "gone", namespace) is None, kind
        # kube-controller-manager's garbage collector follows the owner references down.
        wait_for(lambda: not items(real_api, "replicasets", namespace), what="ReplicaSets GC")
        wait_for(lambda: not items(real_api, "pods", namespace), what="Pods GC")


def test_a_graph_naming_a_missing_pool_is_degraded_until_the_pool_exists(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    graph = {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "ServingGraph",
        "metadata": {"name": "chat"},
        "spec": {"model": "m", "pools": ["here", "missing"]},
    }
    with operator(real_api, namespace, tmp_path / "operator.log"):
        real_api.kubectl("apply", "-f", "-", input=pool("here"), namespace=namespace)
        real_api.kubectl("apply", "-f", "-", input=json.dumps(graph), namespace=namespace)
        degraded = wait_for(lambda: degraded_for(real_api, "sg", "chat", namespace, "PoolNotFound"))
        assert re.search(r"names WorkerPool 'missing', which does not exist", degraded["message"])
        events = wait_for(lambda: warning_events(real_api, namespace, "chat"))
        assert events[0]["reason"] == "PoolNotFound"
        assert get(real_api, "wp", "here", namespace) is not None  # nothing deleted
        real_api.kubectl("apply", "-f", "-", input=pool("missing"), namespace=namespace)
        wait_for(
            lambda: (
                condition(get(real_api, "sg", "chat", namespace), "Degraded").get("status")
                == "False"
            ),
            what="graph healed",
        )

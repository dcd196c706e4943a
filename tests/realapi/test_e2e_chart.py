"""What a user does on a cluster, with pods that run: the process kubelet (support/
process_kubelet) runs every pod bound to its node as local processes on 127.0.0.N.

Render and apply the chart for the server's version, `kubectl apply` the mock P/D
example, wait for the ServingGraph to be Ready, stream a chat completion through the
router pod (cluster mode: its config from the mounted ConfigMap, endpoints from the
pools' status through its ServiceAccount), scale the decode pool in while clients keep
sending, and delete everything. The Kubernetes 1.20 controller manager runs the
Deployments, so the scale-in also shows the operator's fallback for servers whose
ReplicaSets ignore pod-deletion-cost (builders/server_features.py).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from triskel.operator.pods import is_draining

from support.helm import render
from support.kube_rig import RealApi
from support.process_kubelet import process_kubelet
from support.realapi_operator import condition, get, items, wait_for

pytestmark = pytest.mark.realapi

REPO = Path(__file__).resolve().parents[2]
PD_EXAMPLE = REPO / "manifests" / "examples" / "pd-mock.yaml"
MODEL = "llama-3.1-8b"
CLIENTS = 3


def chat(router: str, text: str, timeout_s: float = 30.0) -> str:
    """One streamed chat completion through the router; the text it streamed. Raises on
    any failure: an HTTP error, a broken stream, a stream without its end."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 8,
        "stream": True,
    }
    request = urllib.request.Request(
        f"http://{router}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    pieces: list[str] = []
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                return "".join(pieces)
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(f"error in the stream: {chunk['error']}")
            for choice in chunk.get("choices", []):
                pieces.append(choice.get("delta", {}).get("content") or "")
    raise RuntimeError("the stream ended without [DONE]")


@dataclass
class Load:
    """Clients sending streamed requests back to back until stopped."""

    router: str
    served: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, number: int) -> None:
        sent = 0
        while not self.stop.is_set():
            sent += 1
            started = time.strftime("%H:%M:%S")
            try:
                chat(self.router, f"client {number} request {sent}: tell me about tides")
            except (OSError, urllib.error.URLError, RuntimeError, ValueError) as error:
                with self.lock:
                    self.failures.append(f"client {number} request {sent} at {started}: {error!r}")
            else:
                with self.lock:
                    self.served += 1


@contextmanager
def load(router: str) -> Iterator[Load]:
    running = Load(router)
    threads = [threading.Thread(target=running.client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        for thread in threads:
            thread.join(timeout=60)


def apply_list(api: RealApi, objects: list[dict[str, Any]]) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": objects}
    api.kubectl("apply", "-f", "-", input=json.dumps(listed))


def ready_pods(api: RealApi, namespace: str, selector: str) -> list[dict[str, Any]]:
    done = api.kubectl("get", "pods", "-l", selector, "-o", "json", namespace=namespace)
    pods: list[dict[str, Any]] = json.loads(done.stdout)["items"]
    return [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and condition(p, "Ready").get("status") == "True"
    ]


def _restarts(api: RealApi, namespace: str, selector: str) -> int:
    done = api.kubectl("get", "pods", "-l", selector, "-o", "json", namespace=namespace)
    pods: list[dict[str, Any]] = json.loads(done.stdout)["items"]
    return sum(
        status.get("restartCount", 0)
        for pod in pods
        for status in pod.get("status", {}).get("containerStatuses", [])
    )


def pool_pods(api: RealApi, namespace: str, pool: str) -> list[dict[str, Any]]:
    return [
        p
        for p in items(api, "pods", namespace)
        if p["metadata"].get("labels", {}).get("triskel.io/pool") == pool
    ]


# Install, serve, scale in under load and uninstall, each phase bounded by its own wait:
# ~100 s here with fixtures, over the suite's 120 s per test on a loaded 2-core runner.
@pytest.mark.timeout(300)
def test_install_serve_scale_in_under_load_and_uninstall(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    # As `helm install --namespace <ns> --set operator.watchNamespaces={<ns>}
    # --set router.processes=2` renders it on this cluster (its version picks what the
    # chart grants): the router pod serves with two processes on its ports, which learn
    # the pools from its ServiceAccount each and share load and picks.
    values = {"operator": {"watchNamespaces": [namespace]}, "router": {"processes": 2}}
    chart = render(values, namespace=namespace, kube_version=real_api.server_version())
    cluster_scoped = [m for m in chart if m["kind"].startswith("Cluster")]
    # Probes every second at most and preStop sleeps of 2 s (the chart's 5-20 s periods
    # and the workers' 15 s would only slow the test; every hook still runs).
    kubelet = process_kubelet(
        real_api,
        tmp_path / "kubelet",
        [namespace],
        max_probe_period_s=1,
        max_pre_stop_sleep_s=2,
    )
    with kubelet:
        try:
            apply_list(real_api, chart)
            real_api.kubectl("apply", "-f", str(PD_EXAMPLE), namespace=namespace)
            wait_for(
                lambda: (
                    condition(get(real_api, "sg", "llama", namespace), "Ready").get("status")
                    == "True"
                ),
                timeout_s=180,
                what="ServingGraph llama Ready",
            )
            [router_pod] = wait_for(
                lambda: ready_pods(real_api, namespace, "app.kubernetes.io/component=router"),
                timeout_s=120,
                what="a ready router pod",
            )
            router = f"{router_pod['status']['podIP']}:8080"
            # The router learns the pools' endpoints within its sync interval.
            text = wait_for(lambda: _answer(router), timeout_s=60, what="a streamed answer")
            assert text.strip()
            # The operator's /metrics on its pod IP and the chart's `metrics` port, where
            # its ServiceMonitor scrapes (and KEDA's Prometheus reads the gauge).
            [operator_pod] = ready_pods(real_api, namespace, "app.kubernetes.io/component=operator")
            operator_metrics = f"http://{operator_pod['status']['podIP']}:9090/metrics"
            exposition = wait_for(
                lambda: _text(operator_metrics), timeout_s=30, what="the operator's /metrics"
            )
            assert "# TYPE triskel_autoscaler_desired_replicas gauge" in exposition

            before = {p["metadata"]["name"] for p in pool_pods(real_api, namespace, "llama-decode")}
            assert len(before) == 2, before
            with load(router) as running:
                wait_for(lambda: running.served >= 5, timeout_s=60, what="load running")
                real_api.kubectl("scale", "wp/llama-decode", "--replicas", "1", namespace=namespace)
                [kept] = wait_for(
                    lambda: _one_decode_pod_left(real_api, namespace),
                    timeout_s=120,
                    what="one decode pod left",
                )
                served_at_scale_in = running.served
                # Serving goes on with the pod that stayed.
                wait_for(
                    lambda: running.served >= served_at_scale_in + 10,
                    timeout_s=60,
                    what="requests served after the scale-in",
                )
            assert running.failures == [], running.failures
            # Served through it by the same router process (a restart would be a crash,
            # or a liveness probe that gave up on it).
            restarts = _restarts(real_api, namespace, "app.kubernetes.io/component=router")
            assert restarts == 0, f"the router restarted {restarts} times"
            # The pod that stayed is one of the two that served (no replacement), in
            # service: not marked, and the pool's only endpoint.
            assert kept["metadata"]["name"] in before
            assert not is_draining(kept)
            decode = get(real_api, "wp", "llama-decode", namespace) or {}
            assert decode["status"]["endpoints"] == [f"{kept['status']['podIP']}:50051"]
            deployment = get(real_api, "deployment", "llama-decode", namespace) or {}
            assert deployment["spec"]["replicas"] == 1

            real_api.kubectl("delete", "-f", str(PD_EXAMPLE), namespace=namespace)
            wait_for(
                lambda: (
                    not pool_pods(real_api, namespace, "llama-prefill")
                    and not pool_pods(real_api, namespace, "llama-decode")
                ),
                timeout_s=120,
                what="the pools' pods gone",
            )
            apply_list_delete(real_api, chart)
            wait_for(
                lambda: not items(real_api, "pods", namespace),
                timeout_s=120,
                what="every pod gone",
            )
        finally:
            for manifest in cluster_scoped:
                real_api.kubectl(
                    "delete",
                    manifest["kind"],
                    manifest["metadata"]["name"],
                    "--wait=false",
                    check=False,
                )


def apply_list_delete(api: RealApi, objects: list[dict[str, Any]]) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": objects}
    api.kubectl("delete", "-f", "-", "--wait=false", input=json.dumps(listed))


def _answer(router: str) -> str | None:
    try:
        return chat(router, "hello") or None
    except (OSError, urllib.error.URLError, RuntimeError, ValueError):
        return None


def _text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except (OSError, urllib.error.URLError):
        return None


def _one_decode_pod_left(api: RealApi, namespace: str) -> list[dict[str, Any]] | None:
    """The decode pool's one pod, once the others are gone (processes ended) and it is
    ready; None before."""
    pods = pool_pods(api, namespace, "llama-decode")
    if len(pods) == 1 and condition(pods[0], "Ready").get("status") == "True":
        return pods
    return None

"""The process kubelet (`support.process_kubelet`) against the real API server: pods run.

Kubernetes 1.20's kube-controller-manager makes Deployments into ReplicaSets and Pods;
the process kubelet binds them to its node and runs them as local processes, each pod
on its own 127.0.0.N. The pods here run APP, a small HTTP server that answers with
what it sees (its environment, argv and the files it was pointed at), so each test
checks the pod's view from inside the pod.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from support.kube_rig import RealApi, kubectl_binary
from support.process_kubelet import (
    TRISKEL_ENTRYPOINTS,
    KubeletConfig,
    ProcessKubelet,
    process_kubelet,
)
from support.process_kubelet.actions import ActionContext, capped_sleep, run_action
from support.process_kubelet.api import ApiLogin
from support.process_kubelet.env import expand
from support.process_kubelet.host import HostView
from support.process_kubelet.probes import ProbeTiming
from support.realapi_operator import condition, get, items, wait_for

pytestmark = pytest.mark.realapi

Json = dict[str, Any]

# A pod's program: `--listen HOST:PORT` serves GET / with what the process sees;
# `--files A,B` reads those files on every request; `--events FILE` appends
# "started", "sigterm" (with times) there; `--on-sigterm ignore` keeps running;
# `--crash-once MARKER` exits 3 when MARKER is missing, after creating it.
APP = r"""
import http.server, json, os, signal, sys, time

options = dict(zip(sys.argv[1::2], sys.argv[2::2]))

def record(event):
    if "--events" in options:
        with open(options["--events"], "a") as out:
            out.write(f"{event} {time.time()}\n")

marker = options.get("--crash-once")
if marker and not os.path.exists(marker):
    open(marker, "w").close()
    sys.exit(3)

def on_sigterm(signum, frame):
    record("sigterm")
    if options.get("--on-sigterm") != "ignore":
        sys.exit(0)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        paths = [p for p in options.get("--files", "").split(",") if p]
        files = [open(p).read() if os.path.exists(p) else None for p in paths]
        body = json.dumps({"env": dict(os.environ), "argv": sys.argv[1:], "files": files})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass

host, port = options["--listen"].rsplit(":", 1)
server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
signal.signal(signal.SIGTERM, on_sigterm)
record("started")
print("serving on", host, port, flush=True)
server.serve_forever()
"""
POD_ADDRESS = re.compile(r"^127\.0\.0\.(\d+)$")
# A scale to zero goes through the controller manager, the API server and this kubelet's
# graceful stop: 30 s was not enough once on a loaded 2-core machine (the pod went at 31 s).
POD_GONE_S = 90


def app_container(name: str = "app", port: int = 8080, args: tuple[str, ...] = ()) -> Json:
    return {
        "name": name,
        "image": "python:3",
        "command": ["python", "-c", APP],
        "args": ["--listen", f"0.0.0.0:{port}", *args],
        "ports": [{"name": f"http-{name}", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/", "port": f"http-{name}"}, "periodSeconds": 1},
    }


def deployment(name: str, pod_spec: Json, replicas: int = 1) -> Json:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def apply(api: RealApi, namespace: str, obj: Json) -> None:
    api.kubectl("apply", "-f", "-", input=json.dumps(obj), namespace=namespace)


def available(api: RealApi, namespace: str, name: str, replicas: int) -> bool:
    found = get(api, "deployment", name, namespace)
    return (
        condition(found, "Available").get("status") == "True"
        and (found or {}).get("status", {}).get("availableReplicas") == replicas
        and (found or {}).get("status", {}).get("updatedReplicas") == replicas
    )


def ready_pods(api: RealApi, namespace: str, count: int) -> list[Json] | None:
    """The namespace's pods when exactly `count` exist, none deleting, all Ready."""
    pods = items(api, "pods", namespace)
    if len(pods) != count or any(p["metadata"].get("deletionTimestamp") for p in pods):
        return None
    if all(condition(p, "Ready").get("status") == "True" for p in pods):
        return pods
    return None


def ask(pod_ip: str, port: int = 8080) -> Json:
    """What APP in the pod at `pod_ip` answers."""
    with urllib.request.urlopen(f"http://{pod_ip}:{port}/", timeout=5) as response:
        answer: Json = json.loads(response.read())
    return answer


def pids_of(pod: Json) -> list[int]:
    return [
        int(status["containerID"].removeprefix("process://"))
        for status in pod["status"]["containerStatuses"]
        if "containerID" in status
    ]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def kubelet(real_api: RealApi, namespace: str, tmp_path: Path) -> Iterator[ProcessKubelet]:
    with process_kubelet(real_api, tmp_path / "kubelet", [namespace]) as running:
        yield running


# --- expansion and translation, the pure parts every pod goes through


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "a-b"),  # each defined reference is replaced
        ("$(MISSING)", "$(MISSING)"),  # undefined: kept as written, as Kubernetes does
        ("$$(A)", "$(A)"),  # `$$` escapes: the literal reference survives
        ("$$$(A)", "$a"),  # `$$` then a reference
        ("cost: $5 $", "cost: $5 $"),  # a `$` not before `(` or `$` stays
        ("$(A", "$(A"),  # unclosed: kept
    ],
)
def test_expansion_follows_kubernetes(text: str, expected: str) -> None:
    assert expand(text, {"A": "a", "B": "b"}) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--grpc-address=0.0.0.0:50051", "--grpc-address=127.0.0.9:50051"),
        ("0.0.0.0", "127.0.0.9"),  # a bare wildcard (`--host 0.0.0.0`)
        ("10.0.0.0:80", "10.0.0.0:80"),  # not a wildcard: a longer address
        ("--config=/etc/app/c.json", "--config=/pod/config/c.json"),
        ("/etc/application", "/etc/application"),  # a longer name, not the mount
        ("x/etc/app", "x/etc/app"),  # inside another path
        # A host folder written in (under /tmp) is not translated again by a /tmp mount.
        ("/etc/app /tmp/t", "/pod/config /tmp/pod/tmp/t"),
    ],
)
def test_the_pods_view_becomes_host_terms(text: str, expected: str) -> None:
    view = HostView("127.0.0.9", {"/etc/app": Path("/pod/config"), "/tmp": Path("/tmp/pod/tmp")})
    assert view.translate(text) == expected


def test_a_capped_period_keeps_the_failure_window_of_probes_that_kill() -> None:
    # The chart's router liveness: every 20 s, 3 failures (60 s) before a restart.
    liveness = {"periodSeconds": 20, "failureThreshold": 3}
    killing = ProbeTiming.of(liveness, max_period_s=1, keep_failure_window=True)
    assert (killing.period_s, killing.failure_threshold) == (1, 60)
    # Readiness only marks the pod: probed sooner, it may flip sooner.
    marking = ProbeTiming.of(liveness, max_period_s=1)
    assert (marking.period_s, marking.failure_threshold) == (1, 3)
    # No cap, or a period already under it: the pod's own numbers.
    assert ProbeTiming.of(liveness, None, keep_failure_window=True).failure_threshold == 3
    short = {"periodSeconds": 1, "failureThreshold": 4}
    assert ProbeTiming.of(short, 5, keep_failure_window=True).failure_threshold == 4
    # A window that does not divide evenly rounds up (7 s of failures, probed every 2 s).
    odd = {"periodSeconds": 7, "failureThreshold": 1}
    assert ProbeTiming.of(odd, 2, keep_failure_window=True).failure_threshold == 4


def test_a_capped_pre_stop_sleep_is_shortened_and_other_hooks_kept() -> None:
    # The workers' preStop, in both forms the operator writes (builders/deployment.py).
    assert capped_sleep({"sleep": {"seconds": 15}}, 2) == {"sleep": {"seconds": 2}}
    exec_sleep = {"exec": {"command": ["sleep", "15"]}}
    assert capped_sleep(exec_sleep, 2) == {"exec": {"command": ["sleep", "2"]}}
    # Shorter than the cap, no cap, or not a sleep: as written.
    assert capped_sleep({"sleep": {"seconds": 1}}, 2) == {"sleep": {"seconds": 1}}
    assert capped_sleep(exec_sleep, None) == exec_sleep
    other = {"exec": {"command": ["sh", "-c", "sleep 15"]}}
    assert capped_sleep(other, 2) == other


def test_an_image_without_command_runs_its_entrypoint_by_longest_prefix(tmp_path: Path) -> None:
    login = ApiLogin("https://127.0.0.1:1", "token", tmp_path / "ca.crt")
    config = KubeletConfig(
        login,
        tmp_path,
        None,
        entrypoints={**TRISKEL_ENTRYPOINTS, "ghcr.io/triskel-io/triskel-tools": ("tool",)},
    )
    assert config.entrypoint_for("ghcr.io/triskel-io/triskel") == ("triskel",)
    assert config.entrypoint_for("ghcr.io/triskel-io/triskel:0.3.1") == ("triskel",)
    assert config.entrypoint_for("ghcr.io/triskel-io/triskel-tools:1") == ("tool",)
    assert config.entrypoint_for("python:3") is None


# --- pods that run


def test_a_deployment_becomes_available_on_pod_ips_that_answer(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    """Two replicas: bound, run on their own 127.0.0.N, ready through an httpGet probe;
    the downward API, `$(VAR)` expansion and a ServiceAccount kubeconfig inside; the
    node heartbeats; stop() kills every process and removes the node."""
    container = app_container(args=("--name", "$(POD_NAME)"))
    container["startupProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    container["env"] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "GREETING", "value": "$(POD_NAME) in $(POD_NAMESPACE), $$(POD_NAME) $(NOPE)"},
    ]
    with process_kubelet(real_api, tmp_path / "kubelet", [namespace]) as kubelet:
        apply(real_api, namespace, deployment("web", {"containers": [container]}, replicas=2))
        wait_for(lambda: available(real_api, namespace, "web", 2), 60, "web Available")
        pods = wait_for(lambda: ready_pods(real_api, namespace, 2), 30, "2 ready pods")

        pod_ips = [pod["status"]["podIP"] for pod in pods]
        assert len(set(pod_ips)) == 2, pod_ips
        for pod, pod_ip in zip(pods, pod_ips, strict=True):
            name = pod["metadata"]["name"]
            match = POD_ADDRESS.match(pod_ip)
            assert match is not None and int(match.group(1)) >= 2, pod_ip
            assert pod["status"]["podIPs"] == [{"ip": pod_ip}]
            assert pod["spec"]["nodeName"] == "proc-node"
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
                assert condition(pod, kind)["status"] == "True", kind
            [status] = pod["status"]["containerStatuses"]
            assert status["ready"] and status["started"] and status["restartCount"] == 0
            assert pod["status"]["phase"] == "Running"

            answer = ask(pod_ip)
            env = answer["env"]
            assert (env["POD_NAME"], env["POD_NAMESPACE"]) == (name, namespace)
            assert (env["POD_IP"], env["NODE"], env["ACCOUNT"]) == (pod_ip, "proc-node", "default")
            # Expanded as Kubernetes does: defined names, `$$` escaped, unknown kept.
            assert env["GREETING"] == f"{name} in {namespace}, $(POD_NAME) $(NOPE)"
            assert answer["argv"] == ["--listen", f"{pod_ip}:8080", "--name", name]

            # The kubeconfig authenticates as the pod's ServiceAccount (which may not read
            # Secrets: the refusal names who asked).
            refused = subprocess.run(
                [str(kubectl_binary()), "--kubeconfig", env["KUBECONFIG"], "get", "secrets"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert f"system:serviceaccount:{namespace}:default" in refused.stderr

        node = get(real_api, "node", "proc-node", "")
        assert condition(node, "Ready")["status"] == "True"
        assert not (node or {}).get("spec", {}).get("taints")
        lease = get(real_api, "lease", "proc-node", "kube-node-lease")
        assert lease is not None and lease["spec"]["holderIdentity"] == "proc-node"
        pids = [pid for pod in pods for pid in pids_of(pod)]
        assert len(pids) == 2 and all(is_alive(pid) for pid in pids)

    assert kubelet.processes.pids() == []
    assert not any(is_alive(pid) for pid in pids)
    assert get(real_api, "node", "proc-node", "") is None
    # Its pods left with it; the ReplicaSet's new ones wait for a node.
    names = {pod["metadata"]["name"] for pod in pods}
    leftover = items(real_api, "pods", namespace)
    assert not names & {pod["metadata"]["name"] for pod in leftover}
    assert not any(pod["spec"].get("nodeName") for pod in leftover)


def test_a_crash_restarts_and_tcp_and_exec_probes_decide(
    real_api: RealApi, namespace: str, kubelet: ProcessKubelet
) -> None:
    """The first run exits 3 (restarted, restartCount 1, emptyDir kept across restarts);
    a tcpSocket probe makes it ready; an exec liveness probe that starts failing
    restarts it until it passes again."""
    container = app_container(args=("--crash-once", "/scratch/crashed"))
    container["readinessProbe"] = {"tcpSocket": {"port": "http-app"}, "periodSeconds": 1}
    container["livenessProbe"] = {
        "exec": {"command": ["sh", "-c", "test ! -e /scratch/sick"]},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    container["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crashy"},
        "spec": {
            "containers": [container],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 2,
        },
    }
    apply(real_api, namespace, pod)

    def status() -> Json:
        found = get(real_api, "pod", "crashy", namespace) or {}
        statuses: list[Json] = found.get("status", {}).get("containerStatuses", [{}])
        return statuses[0]

    wait_for(lambda: status().get("ready"), 30, "crashy ready after one crash")
    assert status()["restartCount"] == 1
    assert status()["lastState"]["terminated"]["exitCode"] == 3
    scratch = kubelet.folder_of(get(real_api, "pod", "crashy", namespace) or {}) / "volumes"
    assert (scratch / "scratch" / "crashed").is_file()

    (scratch / "scratch" / "sick").touch()  # the exec probe reads the pod's /scratch
    wait_for(lambda: status()["restartCount"] >= 2, 30, "restarted by its liveness probe")
    (scratch / "scratch" / "sick").unlink()
    wait_for(lambda: status().get("ready"), 30, "ready again once live")
    # Ended by the kubelet's SIGTERM: APP's handler exits 0, or SIGTERM's default (143)
    # when it came before APP installed its handler (the probe runs at once).
    assert status()["lastState"]["terminated"]["exitCode"] in (0, 128 + 15)


def test_an_image_without_command_runs_its_entrypoint(
    real_api: RealApi, namespace: str, kubelet: ProcessKubelet
) -> None:
    """Triskel's image names no command: its entrypoint `triskel` runs (this venv's console
    script, first on PATH); with restartPolicy Never the pod Succeeds when it exits 0. An
    image the kubelet knows no entrypoint for is reported, never started."""

    def pod(name: str, image: str) -> Json:
        container = {"name": "main", "image": image, "args": ["crds"]}
        spec = {"restartPolicy": "Never", "containers": [container]}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}

    apply(real_api, namespace, pod("cli", "ghcr.io/triskel-io/triskel:0.1.0"))
    apply(real_api, namespace, pod("unknown", "example.com/unknown:1"))

    def phase(name: str) -> str:
        return str((get(real_api, "pod", name, namespace) or {}).get("status", {}).get("phase"))

    wait_for(lambda: phase("cli") == "Succeeded", 60, "triskel crds ran")
    cli = get(real_api, "pod", "cli", namespace) or {}
    [status] = cli["status"]["containerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == 0
    assert status["state"]["terminated"]["reason"] == "Completed"
    log = (kubelet.folder_of(cli) / "logs" / "main.log").read_text()
    assert "kind: CustomResourceDefinition" in log

    unknown = get(real_api, "pod", "unknown", namespace) or {}
    [waiting] = [s["state"]["waiting"] for s in unknown["status"]["containerStatuses"]]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert "example.com/unknown:1" in waiting["message"]
    assert phase("unknown") == "Pending"


def test_grpc_and_sleep_handlers(real_api: RealApi, namespace: str) -> None:
    """Kubernetes 1.20 cannot carry gRPC probes or preStop.sleep (the server refuses
    the pod), so the kubelet's handlers for them are driven directly: a real gRPC
    health server, SERVING or not."""
    refused = real_api.kubectl(
        "apply",
        "--validate=false",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "grpc-probe"},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "x", "readinessProbe": {"grpc": {"port": 50051}}}
                    ]
                },
            }
        ),
        namespace=namespace,
        check=False,
    )
    assert "must specify a handler type" in refused.stderr

    context = ActionContext(HostView("127.0.0.1", {}), {}, Path("/"), {"grpc": 0})

    def probe(spec: Json) -> bool:
        return asyncio.run(run_action(spec, context, timeout_s=2)).ok

    health_servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    context = ActionContext(HostView("127.0.0.1", {}), {}, Path("/"), {"grpc": port})
    server.start()
    try:
        serving = health_pb2.HealthCheckResponse.SERVING
        health_servicer.set("", serving)
        assert probe({"grpc": {"port": port}})
        assert probe({"grpc": {"port": "grpc"}})  # a named port
        health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert not probe({"grpc": {"port": port}})
        health_servicer.set("engine", serving)
        assert probe({"grpc": {"port": port, "service": "engine"}})
        assert not probe({"grpc": {"port": port, "service": "unknown"}})  # NOT_FOUND
    finally:
        server.stop(None)
    assert not probe({"grpc": {"port": port}})  # nobody listens any more

    begun = time.monotonic()
    assert probe({"sleep": {"seconds": 1}})
    assert time.monotonic() - begun >= 1


def test_config_map_volumes_are_delivered_and_follow_changes(
    real_api: RealApi, namespace: str, kubelet: ProcessKubelet
) -> None:
    """A required ConfigMap holds the pod in ContainerCreating until it exists; its file
    then follows every change within seconds; an optional one fills in when created."""
    container = app_container(args=("--files", "/etc/app/greeting,/etc/extra/note"))
    container["volumeMounts"] = [
        {"name": "config", "mountPath": "/etc/app", "readOnly": True},
        {"name": "extra", "mountPath": "/etc/extra"},
    ]
    pod_spec = {
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": "app-config"}},
            {"name": "extra", "configMap": {"name": "app-extra", "optional": True}},
        ],
    }
    apply(real_api, namespace, deployment("configured", pod_spec))

    def waiting_reason() -> str | None:
        """The container's waiting reason once its message names the missing ConfigMap."""
        pods = items(real_api, "pods", namespace)
        statuses = pods[0].get("status", {}).get("containerStatuses", []) if pods else []
        waiting: Json = statuses[0]["state"].get("waiting", {}) if statuses else {}
        return waiting.get("reason") if "app-config" in waiting.get("message", "") else None

    assert wait_for(waiting_reason, 30, "waiting for app-config") == "ContainerCreating"

    def config_map(name: str, key: str, value: str) -> Json:
        metadata = {"name": name}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {key: value}}

    apply(real_api, namespace, config_map("app-config", "greeting", "hello"))
    [pod] = wait_for(lambda: ready_pods(real_api, namespace, 1), 30, "configured ready")
    pod_ip = pod["status"]["podIP"]
    answer = ask(pod_ip)
    assert answer["files"] == ["hello", None]
    volumes = kubelet.folder_of(pod) / "volumes"
    assert answer["argv"][-1] == f"{volumes}/config/greeting,{volumes}/extra/note"

    apply(real_api, namespace, config_map("app-config", "greeting", "bonjour"))
    wait_for(lambda: ask(pod_ip)["files"][0] == "bonjour", 10, "the changed greeting")
    apply(real_api, namespace, config_map("app-extra", "note", "later"))
    wait_for(lambda: ask(pod_ip)["files"] == ["bonjour", "later"], 10, "the optional note")


def test_deleting_a_pod_runs_pre_stop_then_sigterm_and_the_replica_set_replaces_it(
    real_api: RealApi, namespace: str, kubelet: ProcessKubelet
) -> None:
    container = app_container(args=("--events", "/events/log"))
    container["volumeMounts"] = [{"name": "events", "mountPath": "/events"}]
    pre_stop = "echo prestop $(date +%s.%N) >> /events/log; sleep 1"
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", pre_stop]}}}
    grace_s = 10
    pod_spec = {
        "containers": [container],
        "volumes": [{"name": "events", "emptyDir": {}}],
        "terminationGracePeriodSeconds": grace_s,
    }
    apply(real_api, namespace, deployment("graceful", pod_spec))
    [old] = wait_for(lambda: ready_pods(real_api, namespace, 1), 30, "graceful ready")
    old_name = old["metadata"]["name"]

    begun = time.monotonic()
    real_api.kubectl("delete", "pod", old_name, "--timeout=60s", namespace=namespace)
    took_s = time.monotonic() - begun

    events = (kubelet.folder_of(old) / "volumes" / "events" / "log").read_text().split("\n")
    kinds = [line.split()[0] for line in events if line]
    assert kinds == ["started", "prestop", "sigterm"], events
    times = {line.split()[0]: float(line.split()[1]) for line in events if line}
    # SIGTERM came after the preStop hook had finished (its 1 s sleep), well in the grace.
    assert 1.0 <= times["sigterm"] - times["prestop"] < grace_s
    assert 1.0 <= took_s < grace_s
    assert not any(is_alive(pid) for pid in pids_of(old))

    [new] = wait_for(lambda: ready_pods(real_api, namespace, 1), 30, "the replacement ready")
    assert new["metadata"]["name"] != old_name
    assert ask(new["status"]["podIP"])["env"]["HOSTNAME"] == new["metadata"]["name"]


def test_scaling_to_zero_stops_every_process(
    real_api: RealApi, namespace: str, kubelet: ProcessKubelet
) -> None:
    """Two pods of two containers on one pod IP each; one container ignores SIGTERM and
    is SIGKILLed when the 2 s grace period ends. Every process is gone afterwards."""
    stubborn = app_container("stubborn", 8081, ("--on-sigterm", "ignore"))
    pod_spec = {"containers": [app_container(), stubborn], "terminationGracePeriodSeconds": 2}
    apply(real_api, namespace, deployment("pair", pod_spec, replicas=2))
    pods = wait_for(lambda: ready_pods(real_api, namespace, 2), 30, "2 pods ready")
    for pod in pods:  # both containers listen on their pod's own IP
        pod_ip = pod["status"]["podIP"]
        assert [ask(pod_ip, port)["argv"][1] for port in (8080, 8081)] == [
            f"{pod_ip}:8080",
            f"{pod_ip}:8081",
        ]
    pids = [pid for pod in pods for pid in pids_of(pod)]
    assert len(pids) == 4 and all(is_alive(pid) for pid in pids)

    begun = time.monotonic()
    real_api.kubectl("scale", "deployment", "pair", "--replicas", "0", namespace=namespace)
    wait_for(lambda: not items(real_api, "pods", namespace), POD_GONE_S, "no pods left")
    took_s = time.monotonic() - begun

    assert not any(is_alive(pid) for pid in pids)
    assert 2.0 <= took_s < 10.0  # the stubborn container held each pod for its grace
    assert kubelet.processes.pids() == []


def test_an_http_server_deployment_answers_on_its_pod_ip(
    real_api: RealApi, namespace: str, tmp_path: Path
) -> None:
    """`python -m http.server PORT --bind 0.0.0.0` as written (the wildcard becomes the
    pod's 127.0.0.N), beside a container with no `command` whose image maps to
    `python`; both ready through httpGet probes and answering on the pod IP."""

    def server(name: str, port: int) -> Json:
        return {
            "name": name,
            "ports": [{"containerPort": port}],
            "readinessProbe": {"httpGet": {"path": "/", "port": port}, "periodSeconds": 1},
        }

    written = server("written", 8000) | {
        "image": "python:3",
        "command": ["python", "-m", "http.server", "8000", "--bind", "0.0.0.0"],
    }
    mapped = server("mapped", 8001) | {
        "image": "example.invalid/python:3.11",
        "args": ["-m", "http.server", "$(PORT)", "--bind", "0.0.0.0"],
        "env": [{"name": "PORT", "value": "8001"}],
    }
    entrypoints = {"example.invalid/python": ("python",)}
    pod_spec = {"containers": [written, mapped], "terminationGracePeriodSeconds": 2}
    with process_kubelet(real_api, tmp_path / "kubelet", [namespace], entrypoints) as kubelet:
        apply(real_api, namespace, deployment("files", pod_spec))
        wait_for(lambda: available(real_api, namespace, "files", 1), 60, "files Available")
        [pod] = wait_for(lambda: ready_pods(real_api, namespace, 1), 30, "the pod ready")
        pod_ip = pod["status"]["podIP"]
        assert POD_ADDRESS.match(pod_ip), pod_ip
        for port in (8000, 8001):
            with urllib.request.urlopen(f"http://{pod_ip}:{port}/", timeout=5) as response:
                assert response.status == 200
                assert b"Directory listing" in response.read()
        pids = pids_of(pod)
        assert len(pids) == 2 and all(is_alive(pid) for pid in pids)

        real_api.kubectl("scale", "deployment", "files", "--replicas", "0", namespace=namespace)
        wait_for(lambda: not items(real_api, "pods", namespace), POD_GONE_S, "no pods left")
        assert not any(is_alive(pid) for pid in pids)
        assert kubelet.processes.pids() == []

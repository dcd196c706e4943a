"""Worker pods run non-root, without capabilities or privilege escalation, seccomp on, and
read-only where the engine writes no file; `spec.security` is the one way to loosen it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from triskel.operator.builders.deployment import build_deployment
from triskel.operator.builders.engines.mock import pool_json

from support.pool_objects import FEATURES, OWNER, pool_spec, validate

REPO = Path(__file__).resolve().parents[3]
IMAGE = "registry.example/triskel:1.2.3"
GPU = {"role": "unified", "resources": {"gpus": 1}}
ENGINES: dict[str, dict[str, Any]] = {
    "mock": {},
    "mock-ep": {"parallelism": {"ep": 2}, "profile": {"name": "deepseek-v2-lite-ep-h100"}},
    "vllm": {"engine": {"type": "vllm"}, **GPU},
    "sglang": {"engine": {"type": "sglang"}, **GPU},
}


def pod_of(**fields: Any) -> dict[str, Any]:
    obj = build_deployment("p1", "ns", pool_spec(**fields), IMAGE, OWNER, FEATURES)
    pod: dict[str, Any] = obj["spec"]["template"]["spec"]
    return pod


def image_uid() -> int:
    """The uid the repository's Dockerfile runs as (`USER uid:gid`)."""
    match = re.search(r"^USER (\d+):(\d+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert match is not None, "the Dockerfile names no numeric USER"
    return int(match.group(1))


@pytest.mark.parametrize("fields", ENGINES.values(), ids=ENGINES.keys())
def test_every_engine_runs_as_the_images_non_root_user(fields: dict[str, Any]) -> None:
    pod = pod_of(**fields)
    # The Triskel image's user, set even for vLLM's and SGLang's root images, whose
    # pods runAsNonRoot would otherwise refuse to start.
    uid = image_uid()
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_the_mock_gets_a_read_only_root_and_a_writable_tmp() -> None:
    pod = pod_of()
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "scratch", "emptyDir": {}} in pod["volumes"]
    assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]
    assert "HOME" not in [e["name"] for e in container["env"]]


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_gpu_engines_write_their_caches_in_a_home_of_their_own(engine: str) -> None:
    pod = pod_of(**ENGINES[engine])
    container = pod["containers"][0]
    # Weights, torch.compile, Triton and FlashInfer caches: the root stays writable.
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    # The root image's home (/root) is not uid 10001's: $HOME is an emptyDir.
    assert {"name": "scratch", "mountPath": "/home/triskel"} in container["volumeMounts"]
    assert {"name": "HOME", "value": "/home/triskel"} in container["env"]
    assert {"name": "scratch", "emptyDir": {}} in pod["volumes"]


def test_rdma_pools_may_run_as_root_with_ipc_lock() -> None:
    pod = pod_of(security={"runAsUser": 0, "addCapabilities": ["IPC_LOCK"]})
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod})
    # Kubernetes gives non-root processes no ambient capabilities: IPC_LOCK needs root.
    assert pod["securityContext"]["runAsNonRoot"] is False
    assert pod["securityContext"]["runAsUser"] == 0
    context = pod["containers"][0]["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}
    assert context["allowPrivilegeEscalation"] is False


def test_another_uid_is_used_as_given() -> None:
    pod = pod_of(**ENGINES["vllm"], security={"runAsUser": 1000})
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["runAsGroup"] == 1000
    assert pod["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize(
    "security",
    [
        {"addCapabilities": ["SYS_ADMIN"]},  # would undo the isolation, not only loosen it
        {"addCapabilities": ["NET_ADMIN"]},
        {"runAsUser": -1},
        {"privileged": True},  # no such field: the pod is never privileged
    ],
)
def test_only_the_listed_loosenings_are_accepted(security: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="security"):
        pool_spec(security=security)


def test_the_worker_is_not_told_its_security() -> None:
    # Only the pod applies it; the worker's --pool-json stays as before.
    spec = pool_spec(security={"runAsUser": 0, "addCapabilities": ["IPC_LOCK"]})
    assert "security" not in pool_json(spec)
    assert pool_json(spec) == pool_json(pool_spec())

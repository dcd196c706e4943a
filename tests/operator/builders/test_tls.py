"""Worker pods with the chart's TLS Secret: Triskel workers mount it and serve mTLS from
it (probed by TCP, which the kubelet can do); vLLM and SGLang pods are left as they are."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from triskel.cli.main import app
from triskel.operator.builders.deployment import build_deployment
from triskel.operator.builders.tls import TLS_MOUNT_DIR, TLS_VOLUME, worker_tls_args

from support.pool_objects import FEATURES, OWNER, pool_spec, validate

IMAGE = "registry.example/triskel:1.2.3"
SECRET = "triskel-worker-tls"


def _deployment(tls_secret: str | None, **fields: Any) -> dict[str, Any]:
    return build_deployment("p1", "ns", pool_spec(**fields), IMAGE, OWNER, FEATURES, tls_secret)


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_a_mock_worker_mounts_the_secret_and_serves_mtls_from_it() -> None:
    deployment = _deployment(SECRET, role="decode")
    validate(deployment)
    pod = _pod(deployment)
    volume = next(v for v in pod["volumes"] if v["name"] == TLS_VOLUME)
    # The whole Secret as a directory: a renewal reaches the running worker.
    assert volume["secret"] == {"secretName": SECRET, "defaultMode": 0o444}
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == TLS_VOLUME)
    assert mount == {"name": TLS_VOLUME, "mountPath": TLS_MOUNT_DIR, "readOnly": True}
    args = container["args"]
    assert args[-6:] == list(worker_tls_args())
    assert f"{TLS_MOUNT_DIR}/ca.crt" in args
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "grpc" not in container[probe]
        assert container[probe]["tcpSocket"] == {"port": 50051}


def test_the_flags_are_the_worker_commands() -> None:
    worker = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    known = {name for param in worker.params for name in param.opts}
    assert set(worker_tls_args()[0::2]) <= known


def test_without_the_secret_nothing_changes() -> None:
    pod = _pod(_deployment(None, role="decode"))
    assert all(v["name"] != TLS_VOLUME for v in pod["volumes"])
    container = pod["containers"][0]
    assert "--tls-cert-file" not in container["args"]
    assert container["readinessProbe"]["grpc"] == {"port": 50051}


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_engines_that_are_not_triskel_workers_are_left_as_they_are(engine: str) -> None:
    fields: dict[str, Any] = {
        "role": "unified",
        "engine": {"type": engine},
        "resources": {"gpus": 1},
    }
    assert _deployment(SECRET, **fields) == _deployment(None, **fields)

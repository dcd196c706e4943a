"""`triskel operator` as a process against the real API server, and what tests read back.

The operator runs as its own process with a kubeconfig (the rig's admin, or a chart
ServiceAccount's token), exactly as `triskel operator` runs in a pod, so a test can
stop it hard (SIGKILL mid-reconcile) and start it again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from support.kube_rig import RealApi

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout_s: float = 30.0, what: str = "") -> T:
    """Polls `check` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or check}")
        time.sleep(0.2)  # the state lives in another process; polling is the point


def get(api: RealApi, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    done = api.kubectl("get", kind, name, "-o", "json", namespace=namespace, check=False)
    if done.returncode != 0:
        assert "NotFound" in done.stderr or "not found" in done.stderr, done.stderr
        return None
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def items(api: RealApi, kind: str, namespace: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        api.kubectl("get", kind, "-o", "json", namespace=namespace).stdout
    )["items"]
    return listed


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    """The status condition of type `kind` ({} when absent)."""
    for found in (obj or {}).get("status", {}).get("conditions", []):
        if found.get("type") == kind:
            return dict(found)
    return {}


def degraded_for(
    api: RealApi, kind: str, name: str, namespace: str, reason: str
) -> dict[str, Any] | None:
    """The object's Degraded condition when it is True for `reason`, else None."""
    found = condition(get(api, kind, name, namespace), "Degraded")
    return found if found.get("status") == "True" and found.get("reason") == reason else None


def warning_events(api: RealApi, namespace: str, name: str) -> list[dict[str, Any]]:
    """Warning events about the object named `name` in `namespace`."""
    return [
        e
        for e in items(api, "events", namespace)
        if e.get("type") == "Warning" and e.get("involvedObject", {}).get("name") == name
    ]


@contextlib.contextmanager
def operator_process(
    kubeconfig: Path, args: Sequence[str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`triskel operator ARGS` with `kubeconfig`, output to `log_path` (shown on failure)."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "triskel.cli.main", "operator", *args],
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    except BaseException:
        print(f"--- operator log {log_path}:\n{log_path.read_text()[-6000:]}")
        raise
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; only this process, by its PID."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def service_account_kubeconfig(api: RealApi, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount `namespace/account`.

    Kubernetes 1.20's token controller writes each ServiceAccount a token Secret; this
    waits for it, as a pod's token mount would."""

    def token() -> str | None:
        for secret in items(api, "secrets", namespace):
            annotations = secret["metadata"].get("annotations", {})
            if (
                secret.get("type") == "kubernetes.io/service-account-token"
                and annotations.get("kubernetes.io/service-account.name") == account
                and "token" in secret.get("data", {})
            ):
                return base64.b64decode(secret["data"]["token"]).decode()
        return None

    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "rig",
                        "cluster": {
                            "server": api.server,
                            "certificate-authority": str(api.ca_path),
                        },
                    }
                ],
                "users": [{"name": account, "user": {"token": wait_for(token, 30, "SA token")}}],
                "contexts": [{"name": "sa", "context": {"cluster": "rig", "user": account}}],
                "current-context": "sa",
            }
        )
    )
    return path

"""Redis requires a password from a Secret and the routers send it: the Secret, the
mounts, the router's flag, and the rendered start command run with a real redis-server."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from support.helm import container, find, render
from support.redis_server import answers_ping, free_loopback_port

KUBERNETES_VERSION = "1.32.0"
ENABLED: dict[str, Any] = {"redis": {"enabled": True}}
AUTH_DIR = "/etc/triskel/redis-auth"
# A quote, a backslash, a space and `$`: each must reach Redis unchanged.
AWKWARD_PASSWORD = 'p"a\\ss wo$rd'


def secret_volume(manifests: list[dict[str, Any]], deployment: str, mount_path: str) -> Any:
    """The Secret volume `deployment`'s container mounts at `mount_path`."""
    pod = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    [mount] = [
        m for m in container(manifests, deployment)["volumeMounts"] if m["mountPath"] == mount_path
    ]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return volume["secret"]


def test_the_chart_makes_a_random_password_secret() -> None:
    manifests = render(ENABLED)
    secret = find(manifests, "Secret", "triskel-redis")
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 32 and password.isalnum()
    # A new one per render without a cluster: an install keeps the one it made (lookup).
    assert find(render(ENABLED), "Secret", "triskel-redis")["data"] != secret["data"]


@pytest.mark.parametrize(
    ("auth", "secret_name", "key"),
    [
        ({}, "triskel-redis", "password"),
        ({"existingSecret": "mine", "existingSecretKey": "pw"}, "mine", "pw"),
    ],
)
def test_redis_and_the_routers_mount_the_same_secret(
    auth: dict[str, str], secret_name: str, key: str
) -> None:
    manifests = render({"redis": {"enabled": True, "auth": auth}})
    for deployment in ("triskel-redis", "triskel-router"):
        volume = secret_volume(manifests, deployment, AUTH_DIR)
        assert volume["secretName"] == secret_name
        assert volume["items"] == [{"key": key, "path": "password"}]
    router_args = container(manifests, "triskel-router")["args"]
    assert f"--redis-password-file={AUTH_DIR}/password" in router_args
    # The password is never in an argument or an env value.
    secrets = [m for m in manifests if m["kind"] == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == ([] if auth else ["triskel-redis"])


def test_without_redis_the_router_has_no_password() -> None:
    router = container(render(), "triskel-router")
    assert not [a for a in router["args"] if a.startswith("--redis-password-file")]
    assert AUTH_DIR not in [m["mountPath"] for m in router["volumeMounts"]]


def test_the_rendered_start_command_makes_redis_require_the_password(tmp_path: Path) -> None:
    redis = container(render(ENABLED), "triskel-redis")
    (tmp_path / "password").write_text(AWKWARD_PASSWORD + "\n")
    port = free_loopback_port()
    # The pod's paths and listen address made this host's (a pod's own network namespace
    # is what makes the wildcard bind safe there).
    script = redis["args"][0].replace(AUTH_DIR, str(tmp_path))
    script = script.replace(
        "redis-server -", f"redis-server - --bind 127.0.0.1 --port {port} --dir {tmp_path}"
    )
    process = subprocess.Popen([*redis["command"], script], stdout=subprocess.DEVNULL)
    try:
        ready_by_probe = _probe_passes(redis, tmp_path, port)
        assert answers_ping(port, AWKWARD_PASSWORD)
        assert not answers_ping(port)
        assert not answers_ping(port, "guess")
        assert ready_by_probe
    finally:
        process.terminate()
        process.wait(10)


def _probe_passes(redis: dict[str, Any], tmp_path: Path, port: int) -> bool:
    """Runs the readiness probe's command (against `port`) until it passes, for 10 s."""
    command = [
        part.replace(AUTH_DIR, str(tmp_path)).replace("redis-cli", f"redis-cli -p {port}")
        for part in redis["readinessProbe"]["exec"]["command"]
    ]
    for _ in range(100):
        if subprocess.run(command, capture_output=True, timeout=10, check=False).returncode == 0:
            return True
        subprocess.run(["sleep", "0.1"], check=False)
    return False

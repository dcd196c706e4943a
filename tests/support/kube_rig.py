"""Real Kubernetes API servers for the `realapi` tests, from `scripts/kube-rig/`.

Two rigs, built from Debian's archive (pinned versions) into `$RIG_DIR`
(default `~/.cache/triskel-rig`) on first use, then reused:

- the hybrid (`start_hybrid`): Kubernetes 1.20's kube-apiserver and
  kube-controller-manager for the built-in APIs, aggregating the CRD half of 1.36's
  apiserver (CEL). Started on free loopback ports with the generated CRDs applied
  before the controller-manager (so its garbage collector watches them at once), an
  audit log (every request, level Metadata) and OwnerReferencesPermissionEnforcement;
- a plain 1.20 control plane (`start_rig_1_20`), whose own CRD server has no CEL.

Each is stopped by the PIDs its script recorded; a build or start that fails fails the
test with the script's reason, never a skip.

The build (`build_rigs`) takes minutes, so tests/realapi/conftest.py runs it at collection
time, outside every test's timeout; `start_*` take seconds and run inside a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from triskel.operator.crds import build_crds

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "kube-rig"
TOOLS = ROOT / ".tools" / "bin"
RIG_DIR = Path(os.environ.get("RIG_DIR", Path.home() / ".cache" / "triskel-rig"))
ADMIN_TOKEN = "rig-admin-token-0123456789"  # the scripts' default static token
# What `start_hybrid` and `start_rig_1_20` run (rig-1.20.sh fills bin/, rig-crd-1.36.sh
# bin-new/: each install skips what is there, so a cached $RIG_DIR is a restore).
BINARIES = (
    "bin/etcd",
    "bin/etcdctl",
    "bin/kube-apiserver",
    "bin/kube-controller-manager",
    "bin-new/etcd",
    "bin-new/etcdctl",
    "bin-new/crd-apiserver",
)
BUILD_TIMEOUT_S = 1800  # ~8 min on 2 cores with a warm mirror; a slow one gets room
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


@dataclass(frozen=True)
class RealApi:
    kubeconfig: Path  # admin (system:masters)
    server: str  # https://127.0.0.1:PORT
    ca_path: Path
    admin_token: str
    audit_log: Path  # one JSON event per line (the hybrid only)
    run_dir: Path

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """kubectl 1.32 as the admin; with `check`, a non-zero exit fails with its stderr."""
        command = [str(kubectl_binary()), "--kubeconfig", str(self.kubeconfig)]
        if namespace is not None:
            command += ["--namespace", namespace]
        done = subprocess.run(
            [*command, *args], input=input, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done

    def server_version(self) -> str:
        """The built-in API's version (`1.20.15`), what `helm install` renders for."""
        version = json.loads(self.kubectl("get", "--raw", "/version").stdout)
        return str(version["gitVersion"]).removeprefix("v")

    def audit_events(self) -> list[dict[str, Any]]:
        """One audit event per request the server answered, in log order: its
        ResponseComplete event. A watch still open has none yet (it completes when the
        client goes): its ResponseStarted event stands in, so the calls of a running
        operator are all there."""
        if not self.audit_log.is_file():
            return []
        final: dict[str, dict[str, Any]] = {}
        # The server may be writing: the text after the last newline is "" or half a line.
        for line in self.audit_log.read_text().split("\n")[:-1]:
            event = json.loads(line)
            stage = event.get("stage")
            if stage == "ResponseComplete" or (
                stage == "ResponseStarted" and event["auditID"] not in final
            ):
                final[event["auditID"]] = event
        return list(final.values())


def kubectl_binary() -> Path:
    binary = TOOLS / "kubectl"
    if not binary.is_file():
        _run(["bash", str(ROOT / "scripts" / "install_tools.sh")], "installing kubectl", 300)
    return binary


def missing_binaries() -> list[str]:
    return [binary for binary in BINARIES if not (RIG_DIR / binary).is_file()]


def build_rigs(log: Path) -> str | None:
    """Runs both scripts' `install` (~8 min on 2 cores; rig-1.20.sh's apt-get install
    needs root or sudo), their output into `log`. Returns None when every binary is
    there afterwards, else why not: the failing script's last lines, which name a pin
    the archive stopped serving when that is the cause."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RIG_DIR": str(RIG_DIR)}
    with log.open("w") as out:
        for script in ("rig-1.20.sh", "rig-crd-1.36.sh"):
            command = ["bash", str(SCRIPTS / script), "install"]
            try:
                done = subprocess.run(
                    command,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BUILD_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return f"{' '.join(command)} took over {BUILD_TIMEOUT_S} s (log: {log})"
            if done.returncode != 0:
                tail = "\n".join(log.read_text().splitlines()[-40:])
                return f"{' '.join(command)} failed (exit {done.returncode}; log: {log}):\n{tail}"
    missing = missing_binaries()
    return f"the rig scripts built no {', '.join(missing)} (log: {log})" if missing else None


@contextlib.contextmanager
def start_hybrid(run_dir: Path) -> Iterator[RealApi]:
    kubectl_binary()  # installed first: the script applies its APIServices with it
    ports = _free_ports(5)
    crds = run_dir / "crds.yaml"
    crds.write_text(yaml.safe_dump_all(build_crds(), sort_keys=False))
    policy = run_dir / "audit-policy.yaml"
    policy.write_text(json.dumps(AUDIT_POLICY))
    audit_log = run_dir / "audit.log"
    env = {
        "RIG_HYBRID_RUN": str(run_dir / "run"),
        "HY_API_PORT": str(ports[0]),
        "HY_CRD_PORT": str(ports[1]),
        "HY_KCM_PORT": str(ports[2]),
        "HY_ETCD_PORT": str(ports[3]),
        "HY_ETCD_PEER_PORT": str(ports[4]),
        "RIG_CRDS": str(crds),
        "RIG_APISERVER_ARGS": f"--audit-policy-file {policy} --audit-log-path {audit_log} "
        "--audit-log-format json --enable-admission-plugins OwnerReferencesPermissionEnforcement",
    }
    script = ["bash", str(SCRIPTS / "rig-crd-1.36.sh")]
    try:
        _run([*script, "start-hybrid"], "starting the hybrid API server", 180, env, run_dir)
        pki = run_dir / "run" / "pki"
        yield RealApi(
            kubeconfig=run_dir / "run" / "kubeconfig",
            server=f"https://127.0.0.1:{ports[0]}",
            ca_path=pki / "ca.crt",
            admin_token=ADMIN_TOKEN,
            audit_log=audit_log,
            run_dir=run_dir,
        )
    finally:
        _run([*script, "stop-hybrid"], "stopping the hybrid API server", 60, env, run_dir)


@contextlib.contextmanager
def start_rig_1_20(run_dir: Path) -> Iterator[RealApi]:
    # rig-1.20.sh keeps its run state under $RIG_DIR: a private one sharing the binaries.
    kubectl_binary()  # installed first: the script applies the CRDs with it
    private = run_dir / "rig"
    private.mkdir()
    (private / "bin").symlink_to(RIG_DIR / "bin")
    crds = run_dir / "crds.yaml"
    crds.write_text(yaml.safe_dump_all(build_crds(), sort_keys=False))
    ports = _free_ports(4)
    env = {
        "RIG_DIR": str(private),
        "API_PORT": str(ports[0]),
        "KCM_PORT": str(ports[1]),
        "ETCD_PORT": str(ports[2]),
        "ETCD_PEER_PORT": str(ports[3]),
        "RIG_CRDS": str(crds),
    }
    script = ["bash", str(SCRIPTS / "rig-1.20.sh")]
    try:
        _run([*script, "start"], "starting the Kubernetes 1.20 API server", 180, env, run_dir)
        yield RealApi(
            kubeconfig=private / "run" / "kubeconfig",
            server=f"https://127.0.0.1:{ports[0]}",
            ca_path=private / "run" / "pki" / "apiserver.crt",
            admin_token=ADMIN_TOKEN,
            audit_log=run_dir / "no-audit.log",
            run_dir=run_dir,
        )
    finally:
        _run([*script, "stop"], "stopping the Kubernetes 1.20 API server", 60, env, run_dir)


def _run(
    command: list[str],
    what: str,
    timeout_s: float,
    env: dict[str, str] | None = None,
    logs: Path | None = None,
) -> None:
    full_env = {
        **os.environ,
        "RIG_DIR": str(RIG_DIR),
        # The scripts call kubectl (applying CRDs and APIServices): the pinned 1.32.
        "PATH": f"{TOOLS}:{os.environ['PATH']}",
        **(env or {}),
    }
    try:
        done = subprocess.run(
            command, env=full_env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        output, failed = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}", done.returncode != 0
    except subprocess.TimeoutExpired:
        output, failed = f"(no answer within {timeout_s} s)", True
    if failed:
        server_logs = ""
        if logs is not None:
            for log in sorted(logs.rglob("*.log")):
                server_logs += f"\n--- {log}:\n{log.read_text()[-3000:]}"
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{output}{server_logs}")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

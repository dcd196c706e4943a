"""A worker pod's TLS certificate, from a Secret the chart names, and how it is used.

    Secret <worker TLS secret>   kubernetes.io/tls, as cert-manager writes it:
        tls.crt, tls.key, ca.crt
        └─► volume worker-tls (read-only) ──► /var/run/secrets/triskel.io/worker-tls/
            └─► triskel worker --tls-cert-file …/tls.crt --tls-key-file …/tls.key
                               --tls-client-ca-file …/ca.crt

One Secret for every pool, named by the operator's --worker-tls-secret (the chart's
tls settings): TLS is all or nothing across a router's workers, since the router calls
them all with one client certificate. With it the worker's gRPC server requires a
client certificate the CA signed (the router's, the operator's for its drain probes)
and workers pull KV from each other over mutual TLS. The Secret is mounted as a
directory, not by items, so a renewal (cert-manager rewrites the Secret, the kubelet
swaps the directory's symlink) reaches the running worker, which reloads it.

Only Triskel workers take the flags (the mock engine); vLLM and SGLang pods are left
as they are. The kubelet's gRPC probes speak plaintext only, so a TLS worker is probed
by TCP: its port opens when it serves.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

TLS_VOLUME = "worker-tls"
TLS_MOUNT_DIR = "/var/run/secrets/triskel.io/worker-tls"
CERT_KEY, KEY_KEY, CA_KEY = "tls.crt", "tls.key", "ca.crt"
# As the KV key's: the mount is root's and the worker runs as uid 10001 (no fsGroup).
_FILE_MODE = 0o444


def worker_tls_volume(secret_name: str) -> Json:
    """The pod volume holding the TLS Secret (the pod waits for the Secret)."""
    return {"name": TLS_VOLUME, "secret": {"secretName": secret_name, "defaultMode": _FILE_MODE}}


def worker_tls_mount() -> Json:
    return {"name": TLS_VOLUME, "mountPath": TLS_MOUNT_DIR, "readOnly": True}


def worker_tls_args() -> tuple[str, ...]:
    """The flags that make `triskel worker` serve mTLS from the mounted files."""
    return (
        "--tls-cert-file",
        f"{TLS_MOUNT_DIR}/{CERT_KEY}",
        "--tls-key-file",
        f"{TLS_MOUNT_DIR}/{KEY_KEY}",
        "--tls-client-ca-file",
        f"{TLS_MOUNT_DIR}/{CA_KEY}",
    )


def plaintext_probe(action: Json) -> Json:
    """A gRPC probe action as a TCP one (the kubelet cannot probe gRPC over TLS)."""
    if "grpc" in action:
        return {"tcpSocket": {"port": action["grpc"]["port"]}}
    return action

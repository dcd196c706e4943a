"""The mock engine's container: `triskel worker` in the Triskel image.

    triskel worker --pool-json '{"role":"prefill",...}'  the pool spec, minus replicas
                   --worker-id $(POD_NAME)               unique and stable for the pod's life
                   --grpc-address 0.0.0.0:50051          reachable on the pod IP
                   --frame-port 50052                    the data plane as frames
                   --kv-host $(POD_IP)                   KV listeners bind and advertise it
                   --kv-auth-key-file <KV_KEY_FILE>      the model's key Secret, mounted
                   [engine.args ...]

The KV connectors listen on ports the kernel picks and advertise them in every KV
handle, so no `kv` port is declared: pod-to-pod traffic needs no declared port.
The worker serves no /metrics yet, so its pods are not scraped. It writes no file, so
its root filesystem is read-only (builders/security.py).
"""

from __future__ import annotations

import json

from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.engines.base import (
    POD_IP_ENV,
    POD_NAME_ENV,
    EnginePod,
    NamedPort,
    escape_expansion,
    user_args,
)
from triskel.operator.builders.kv_key import KV_KEY_FILE

GRPC_PORT = 50051
# Declared, so a pool's NetworkPolicy admits routers to it (worker_frames.proto).
FRAME_PORT = 50052
HTTP_PORT = 8000  # vLLM's default, for EP groups' /scale_elastic_ep
# Importing Triskel and sizing the KV arena take a few seconds on a slow node.
_STARTUP_BUDGET_S = 60


def pool_json(spec: WorkerPoolSpec) -> str:
    """The spec a worker needs, as compact JSON with sorted keys.

    `replicas` is left out: it changes whenever the pool scales, and a change in
    the pod template would restart every pod instead of adding or removing some.
    `security` too: the pod's securityContext applies it, the worker never reads it.
    """
    data = spec.model_dump(mode="json", by_alias=True, exclude={"replicas", "security"})
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def mock_pod(spec: WorkerPoolSpec, image: str) -> EnginePod:
    """The mock worker's container; `image` is the Triskel image (`engine.image` wins).
    An EP group (`parallelism.ep > 1`) also serves vLLM's HTTP API on `http`: the operator
    changes its EP size through `/scale_elastic_ep` there."""
    elastic = spec.parallelism.ep > 1
    http_args = ("--http-address", f"0.0.0.0:{HTTP_PORT}") if elastic else ()
    http_ports = (NamedPort("http", HTTP_PORT),) if elastic else ()
    return EnginePod(
        image=spec.engine.image or image,
        command=("triskel", "worker"),
        args=(
            "--pool-json",
            escape_expansion(pool_json(spec)),
            "--worker-id",
            f"$({POD_NAME_ENV})",
            "--grpc-address",
            f"0.0.0.0:{GRPC_PORT}",
            "--frame-port",
            str(FRAME_PORT),
            "--kv-host",
            f"$({POD_IP_ENV})",
            # Shared by every pool of the model: a decode worker pulls a prefill's KV.
            "--kv-auth-key-file",
            KV_KEY_FILE,
            *http_args,
            *user_args(spec),
        ),
        ports=(NamedPort("grpc", GRPC_PORT), NamedPort("frames", FRAME_PORT), *http_ports),
        # The worker's gRPC server serves the standard health service ("" is SERVING
        # once it accepts calls), which the kubelet's gRPC probe asks.
        health_check={"grpc": {"port": GRPC_PORT}},
        startup_budget_s=_STARTUP_BUDGET_S,
        reads_kv_auth_key=True,
        takes_tls_flags=True,
        # It writes no file (its KV arena is anonymous memory); /tmp is an emptyDir.
        read_only_root=True,
    )

"""What an engine contributes to its pool's pods, and helpers every engine uses.

Each engine module (mock, vllm, sglang) turns a `WorkerPoolSpec` into an
`EnginePod`; `deployment.py` wraps it in the parts every pool shares (resources,
probes' timing, drain, placement). The pod learns its own identity from the
downward API: env POD_NAME and POD_IP, which Kubernetes substitutes into args and
later env values written as `$(POD_NAME)` / `$(POD_IP)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from triskel.common.api import WorkerPoolSpec

Json = dict[str, Any]

POD_NAME_ENV = "POD_NAME"
POD_IP_ENV = "POD_IP"

# The first env entries of every worker container; the ones after them, and args,
# may refer to these as $(POD_NAME) and $(POD_IP).
DOWNWARD_ENV: tuple[Json, ...] = (
    {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": POD_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
)


@dataclass(frozen=True, slots=True)
class NamedPort:
    """A container port; the names are `grpc`, `http` and `kv`."""

    name: str
    port: int


@dataclass(frozen=True, slots=True)
class EnginePod:
    """One engine's container: what runs, what it listens on, how it reports health."""

    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    ports: tuple[NamedPort, ...]
    # The probe action shared by the startup, readiness and liveness probes,
    # e.g. {"grpc": {"port": 50051}} or {"httpGet": {"path": "/health", "port": "http"}}.
    health_check: Json
    # Longest a replica may take to become healthy the first time (weights download,
    # load, CUDA graph capture); liveness checks start only after that.
    startup_budget_s: int
    # Env after POD_NAME / POD_IP (which may appear in these values as $(POD_IP)).
    env: tuple[Json, ...] = ()
    # The port serving Prometheus' /metrics; None when the engine serves none.
    metrics_port: int | None = None
    # GPU engines move tensors between processes through /dev/shm (NCCL, torch),
    # which a container's default 64 MiB cannot hold.
    needs_shared_memory: bool = False
    # The engine reads the model's KV auth key from builders/kv_key.KV_KEY_FILE (Triskel
    # workers); the pod then mounts the model's key Secret there. vLLM and SGLang move KV
    # with their own connectors and take no Triskel key.
    reads_kv_auth_key: bool = False
    # A Triskel worker: it takes `triskel worker`'s --tls-* flags (builders/tls.py).
    takes_tls_flags: bool = False
    # The engine writes nothing outside /tmp, so its root filesystem can be read-only.
    # vLLM and SGLang write caches (weights, torch.compile, Triton and FlashInfer kernels)
    # under $HOME and elsewhere: theirs stays writable.
    read_only_root: bool = False


def escape_expansion(text: str) -> str:
    """`text` with every `$` doubled, so Kubernetes' `$(VAR)` expansion leaves it as is.

    Kubernetes turns `$$` into `$` in command, args and env values; without this,
    a user arg like `$(HOME)` would be replaced by the container's env value.
    """
    return text.replace("$", "$$")


def user_args(spec: WorkerPoolSpec) -> tuple[str, ...]:
    """`engine.args`, appended after ours: with argparse-style parsers the last value
    of a repeated flag wins, so a user flag overrides the one Triskel sets."""
    return tuple(escape_expansion(arg) for arg in spec.engine.args)


def http_health_check(path: str = "/health") -> Json:
    return {"httpGet": {"path": path, "port": "http"}}


def gpus_needed(spec: WorkerPoolSpec, needed: int, why: str) -> None:
    """ValueError naming the field when a GPU engine gets fewer GPUs than it uses."""
    if spec.resources.gpus < needed:
        raise ValueError(
            f"resources.gpus ({spec.resources.gpus}) < {needed}: "
            f"{spec.engine.type} needs {why} per replica"
        )

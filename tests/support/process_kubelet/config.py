"""What a process kubelet is told: its API server, node, namespaces, images and folders."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .api import ApiLogin

# Triskel's image runs its console script (`ENTRYPOINT ["triskel"]` in the Dockerfile).
TRISKEL_ENTRYPOINTS: Mapping[str, tuple[str, ...]] = {"ghcr.io/triskel-io/triskel": ("triskel",)}


@dataclass(frozen=True, slots=True)
class KubeletConfig:
    login: ApiLogin
    # Pods, volumes and logs live in `work_dir/pods/<namespace>_<name>_<uid>/`.
    work_dir: Path
    # Pending pods in these namespaces are bound to this node and run; None: every
    # namespace. Pods of other namespaces bound to the node are only finished once
    # deleted (an earlier test's, on a node of the same name), never run.
    namespaces: frozenset[str] | None
    # Image prefix -> entrypoint, for containers that name no `command` (the longest
    # prefix the image starts with wins: `ghcr.io/triskel-io/triskel` covers every tag).
    entrypoints: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: TRISKEL_ENTRYPOINTS)
    node_name: str = "proc-node"
    # Pod IPs are 127.0.0.N from this N up (two kubelets at once: disjoint ranges).
    first_address: int = 2
    # First on every container's PATH: the venv the tests run in, so `python` and
    # `triskel` are this checkout's.
    bin_dir: Path = Path(sys.executable).parent
    # Added to every container's environment before its own `env` (which wins).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Caps every probe's periodSeconds (see probes.py); None keeps the pod's.
    max_probe_period_s: float | None = None
    # Caps a preStop hook's sleep (the `sleep` handler or an exec of `sleep N`); None
    # keeps the pod's. The hook still runs before SIGTERM, only shorter.
    max_pre_stop_sleep_s: float | None = None

    def entrypoint_for(self, image: str) -> tuple[str, ...] | None:
        matching = [prefix for prefix in self.entrypoints if image.startswith(prefix)]
        return self.entrypoints[max(matching, key=len)] if matching else None

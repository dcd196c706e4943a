"""Who a pool's engine runs as, and where it may write: the pods' securityContext.

    pod        runAsNonRoot, runAsUser = runAsGroup = spec.security.runAsUser (10001: the
               Triskel image's user), seccompProfile RuntimeDefault
    container  allowPrivilegeEscalation false, capabilities drop ALL (then add
               spec.security.addCapabilities), readOnlyRootFilesystem where the engine
               writes no file (the mock)
    scratch    read-only root: an emptyDir at /tmp (Python and its libraries may want one)
               writable root (vLLM, SGLang): an emptyDir as $HOME, where they keep their
               caches; their images run as root, whose home uid 10001 cannot write

The defaults meet the Pod Security Standards' "restricted" profile. The uid is set even
for images that name a user of their own: a root image (vLLM's, SGLang's) would
otherwise fail runAsNonRoot. runAsUser 0 drops runAsNonRoot: Kubernetes sets no ambient
capabilities, so only a root process can use the ones `addCapabilities` gives back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.engines import EnginePod

Json = dict[str, Any]

SCRATCH_VOLUME = "scratch"
TMP_DIR = "/tmp"
HOME_DIR = "/home/triskel"


@dataclass(frozen=True, slots=True)
class Scratch:
    """The one writable folder of a pool's pods: its volume, mount and env."""

    volume: Json
    mount: Json
    env: tuple[Json, ...]


def pod_security_context(spec: WorkerPoolSpec) -> Json:
    uid = spec.security.run_as_user
    context: Json = {
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # With runAsNonRoot the kubelet refuses to start a root process: uid 0 is a choice.
    context["runAsNonRoot"] = uid != 0
    return context


def container_security_context(spec: WorkerPoolSpec, engine: EnginePod) -> Json:
    capabilities: Json = {"drop": ["ALL"]}
    if spec.security.add_capabilities:
        capabilities["add"] = [str(c) for c in spec.security.add_capabilities]
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": engine.read_only_root,
        "capabilities": capabilities,
    }


def scratch(engine: EnginePod) -> Scratch:
    """/tmp for an engine on a read-only root; $HOME for one that writes caches there."""
    volume = {"name": SCRATCH_VOLUME, "emptyDir": {}}
    if engine.read_only_root:
        return Scratch(volume, {"name": SCRATCH_VOLUME, "mountPath": TMP_DIR}, ())
    return Scratch(
        volume,
        {"name": SCRATCH_VOLUME, "mountPath": HOME_DIR},
        ({"name": "HOME", "value": HOME_DIR},),
    )

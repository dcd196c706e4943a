"""What the cluster's API server accepts in the objects the operator builds, by its version.

Kubernetes 1.20 is the oldest version Triskel supports (docs/operator.md says why and
how each version is tested). Three fields of a pool's children and one controller
behaviour are newer than that, and each has a fallback that older servers take:

    field                          from   older servers get
    policy/v1 PodDisruptionBudget  1.21   policy/v1beta1 (same fields we set, minus
                                          unhealthyPodEvictionPolicy)
    gRPC probes                    1.24   a tcpSocket probe on the same port
    lifecycle.preStop.sleep        1.30   preStop exec `sleep N` (needs `sleep` in the image)
    pod-deletion-cost honoured     1.22   the operator deletes the drained pods itself
      by ReplicaSets                      before shrinking the Deployment (pool_reconciler)

A server older than a field refuses the object outright ("must specify a handler
type"), so the choice cannot be left to the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

OLDEST_SUPPORTED_MINOR = 20
_LEADING_DIGITS = re.compile(r"\d+")


class ServerVersionError(ValueError):
    """The server's /version cannot be read, or names a release Triskel does not support."""


@dataclass(frozen=True, slots=True)
class ServerFeatures:
    """Features of a Kubernetes 1.`minor` API server that the builders choose between."""

    minor: int

    @classmethod
    def from_version(cls, version: dict[str, Any]) -> ServerFeatures:
        """From the body of GET /version (`major: "1"`, `minor: "30"`; managed clusters
        write `minor: "30+"`)."""
        major = _number(version.get("major"), "major")
        minor = _number(version.get("minor"), "minor")
        if major != 1 or minor < OLDEST_SUPPORTED_MINOR:
            raise ServerVersionError(
                f"Kubernetes {major}.{minor} is older than the oldest supported, "
                f"1.{OLDEST_SUPPORTED_MINOR}"
            )
        return cls(minor)

    @property
    def pdb_api_version(self) -> str:
        return "policy/v1" if self.minor >= 21 else "policy/v1beta1"

    @property
    def has_grpc_probes(self) -> bool:
        return self.minor >= 24

    @property
    def honours_pod_deletion_cost(self) -> bool:
        # Alpha and off by default in 1.21, beta and on from 1.22 (PodDeletionCost): an
        # older ReplicaSet removes pods by its own ranking, not the drained ones first.
        return self.minor >= 22

    @property
    def has_pre_stop_sleep(self) -> bool:
        # Beta and on by default from 1.30 (PodLifecycleSleepAction).
        return self.minor >= 30


def _number(value: Any, field: str) -> int:
    match = _LEADING_DIGITS.match(str(value or ""))
    if match is None:
        raise ServerVersionError(f"/version: {field} is {value!r}, not a number")
    return int(match.group())

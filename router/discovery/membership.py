"""Discovery without Kubernetes: the membership file `triskel up` writes.

The router's cluster sync (`sync.py`) is reused as is. This module gives it the two
things it reads in a cluster, from one local file instead:

    membership file ──► a RouterClusterConfig: a graph per model, its pools
                   └──► the pools' endpoints (what WorkerPool status.endpoints holds)

Routing is not in the file: a `triskel up` router keeps the routing of its own
config, so the sync only joins and drains workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from triskel.common.local_membership import LocalMembership
from triskel.common.resources import GraphSlo
from triskel.common.router_cluster import GraphRoute, PoolRoute, RouterClusterConfig
from triskel.common.routing_api import DisaggregationSpec
from triskel.router.discovery.desired import PoolKey

_log = logging.getLogger(__name__)

# How often the router re-reads the file: a drained worker stops getting new
# requests within about this long (`triskel up` waits a few times it before stopping one).
MEMBERSHIP_POLL_S = 0.5
# The namespace of every local pool in the PoolKeys the sync asks about.
LOCAL_NAMESPACE = "local"


class MembershipFileError(RuntimeError):
    """The file cannot be read or parsed (at start: the router does not start)."""


class MembershipFile:
    """Re-reads the membership file when its text changes; keeps the last good one."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._text: str | None = None
        self.membership = LocalMembership()

    def load(self) -> LocalMembership:
        """The file as it is now; MembershipFileError names the path and the problem."""
        try:
            text = self._path.read_text()
        except OSError as error:
            raise MembershipFileError(
                f"membership_file: cannot read {self._path}: {error.strerror}"
            ) from None
        try:
            self.membership = LocalMembership.from_json(text)
        except ValidationError as error:
            raise MembershipFileError(
                f"membership_file: {self._path} is not a membership document: {error}"
            ) from None
        self._text = text
        return self.membership

    def refresh(self) -> bool:
        """True when a new, valid document was loaded; a bad one is logged and skipped."""
        try:
            text = self._path.read_text()
        except OSError as error:
            _log.warning("cannot read %s: %s; keeping the last membership", self._path, error)
            return False
        if text == self._text:
            return False
        self._text = text
        try:
            self.membership = LocalMembership.from_json(text)
        except ValidationError as error:
            _log.error("%s is not a membership document (keeping the last): %s", self._path, error)
            return False
        return True

    def read_config(self) -> RouterClusterConfig:
        """The sync's view of the file: one graph per model with that model's pools."""
        self.refresh()
        return cluster_config(self.membership)

    async def fetch_endpoints(self, pools: Sequence[PoolKey]) -> dict[PoolKey, list[str]]:
        """The asked pools' endpoints as last read (the sync's `fetch_endpoints`)."""
        listed = {(LOCAL_NAMESPACE, pool.name): pool.endpoints for pool in self.membership.pools}
        return {key: list(listed[key]) for key in pools if key in listed}


def cluster_config(membership: LocalMembership) -> RouterClusterConfig:
    """Pools grouped into a graph per model. The graphs' SLO and disaggregation are
    placeholders the sync never reads: it runs without routing reloads here."""
    models = sorted({pool.model for pool in membership.pools})
    graphs = [
        GraphRoute(
            namespace=LOCAL_NAMESPACE,
            name=model,
            model=model,
            slo=GraphSlo(),
            disaggregation=DisaggregationSpec(),
            pools=[
                PoolRoute(
                    name=pool.name,
                    role=pool.role,
                    model=pool.model,
                    engine=pool.engine,
                    service=pool.name,  # no Service: addresses come from the file
                    ports={},
                )
                for pool in membership.pools
                if pool.model == model
            ],
        )
        for model in models
    ]
    return RouterClusterConfig(graphs=graphs)

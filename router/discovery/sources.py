"""Where in-cluster discovery reads from: the mounted router config, the pools' status.

The config file is the operator's ConfigMap mounted into the router pod; the kubelet
refreshes it within about a minute of a change, which is soon enough for policy
edits. Endpoints change faster (scale-in drains wait on them), so they come from
the WorkerPools' `status.endpoints` through the API, which the operator updates
the moment it starts draining a pod.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from triskel.common.kube import KubeClient, resource_path
from triskel.common.router_cluster import RouterClusterConfig
from triskel.router.discovery.desired import PoolKey

_log = logging.getLogger(__name__)


class ConfigFile:
    """Re-reads the router config when its text changes; keeps the last good one."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._text: str | None = None
        self.config: RouterClusterConfig = RouterClusterConfig()

    def refresh(self) -> bool:
        """True when a new, valid config was loaded."""
        try:
            text = self._path.read_text()
        except OSError as error:
            if self._text is not None or error.errno != 2:
                _log.warning("cannot read %s: %s; keeping the last config", self._path, error)
            return False
        if text == self._text:
            return False
        self._text = text
        try:
            self.config = RouterClusterConfig.from_json(text)
        except ValidationError as error:
            _log.error(
                "%s is not a valid router config (keeping the last one): %s", self._path, error
            )
            return False
        return True


async def fetch_endpoints(kube: KubeClient, pools: Sequence[PoolKey]) -> dict[PoolKey, list[str]]:
    """Each pool's ready, non-draining worker addresses from its WorkerPool status.

    A pool that cannot be read keeps no endpoints this round (logged): sending to
    workers the operator may be draining would be worse than serving with fewer.
    """
    found: dict[PoolKey, list[str]] = {}
    for namespace, name in pools:
        path = resource_path("triskel.io/v1alpha1", "WorkerPool", namespace, name)
        try:
            pool = await kube.get(path)
        except Exception as error:  # network or API errors: retried next round
            _log.warning("cannot read WorkerPool %s/%s: %s", namespace, name, error)
            continue
        if pool is not None:
            found[(namespace, name)] = list(pool.get("status", {}).get("endpoints", []))
    return found

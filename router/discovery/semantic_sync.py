"""Keeps the router's semantic aliases in line with the published RoutingPolicies.

Every policy in the router config with a `semantic` section serves its alias. A
policy is loaded again only when its spec or what it may target changed; one that
fails to load (a target no graph serves yet, say) keeps the alias's last good
policy, and its error is logged once per change. Two policies claiming one alias:
the first by namespace and name serves it, the other is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from triskel.common.router_cluster import PolicyEntry, RouterClusterConfig
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.loader import Targets
from triskel.router.semantic.setup import EmbedderCache, load_semantic
from triskel.router.semantic.stage import LoadedSemantic, SemanticStage

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Source:
    """What a loaded alias was built from: reload only when this changes."""

    policy: str  # namespace/name
    spec_json: str
    targets: tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


class SemanticSync:
    def __init__(self, stage: SemanticStage, embedders: EmbedderCache | None = None) -> None:
        self._stage = stage
        self._embedders = embedders or EmbedderCache()
        self._loaded: dict[str, tuple[_Source, LoadedSemantic]] = {}
        self._failed: set[_Source] = set()

    def apply(self, config: RouterClusterConfig) -> None:
        wanted: dict[str, tuple[_Source, LoadedSemantic]] = {}
        for entry in config.routing_policies:  # sorted by namespace and name
            semantic = entry.spec.semantic
            if semantic is None:
                continue
            if semantic.alias in wanted:
                _log.error(
                    "RoutingPolicy %s/%s: alias %r is already served by %s; ignored",
                    entry.namespace,
                    entry.name,
                    semantic.alias,
                    wanted[semantic.alias][0].policy,
                )
                continue
            loaded = self._load(entry, _targets(config, entry.namespace))
            if loaded is not None:
                wanted[semantic.alias] = loaded
        if wanted != self._loaded:
            self._loaded = wanted
            self._stage.replace({alias: loaded for alias, (_, loaded) in wanted.items()})
            _log.info("semantic aliases: %s", ", ".join(sorted(wanted)) or "none")

    def _load(self, entry: PolicyEntry, targets: Targets) -> tuple[_Source, LoadedSemantic] | None:
        semantic = entry.spec.semantic
        assert semantic is not None
        source = _Source(
            f"{entry.namespace}/{entry.name}",
            semantic.model_dump_json()
            + (entry.spec.cache.model_dump_json() if entry.spec.cache else ""),
            (tuple(sorted(targets.models or ())), tuple(sorted(targets.graphs.items()))),
        )
        previous = self._loaded.get(semantic.alias)
        if previous is not None and previous[0] == source:
            return previous
        try:
            policy, embedder = load_semantic(semantic, targets, self._embedders, "spec.semantic")
        except SemanticConfigError as error:
            if source not in self._failed:
                self._failed.add(source)
                _log.error("RoutingPolicy %s: not loaded: %s", source.policy, error)
            return previous  # the alias keeps what served before, if anything
        return source, LoadedSemantic(policy, embedder, entry.spec.cache)


def _targets(config: RouterClusterConfig, namespace: str) -> Targets:
    local = {g.name: g.model for g in config.graphs if g.namespace == namespace}
    return Targets(models=set(local.values()), graphs=local)

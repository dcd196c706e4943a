"""Would the router accept this RoutingPolicy? Judged with the router's own loaders.

The scheduling and semantic packages are pure (no I/O), so the operator builds every
plugin and signal exactly as a router would and reports a bad parameter, rule or
target before any router sees it. Building a semantic section trains its classifier
(a fraction of a second), so verdicts are remembered per spec and targets.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from triskel.common.resources import RoutingPolicySpec, ServingGraphSpec
from triskel.operator.builders.router_config import Named
from triskel.operator.validation import describe_error
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.loader import Targets
from triskel.router.semantic.setup import EmbedderCache, load_semantic

# Verdicts kept; a cluster has far fewer distinct policies.
_MEMO_SIZE = 256


def targets_in(namespace: str, graphs: Iterable[Named[ServingGraphSpec]]) -> Targets:
    """What a policy in `namespace` may send to: the models of its namespace's graphs."""
    local = {g.name: g.spec.model for g in graphs if g.namespace == namespace}
    return Targets(models=set(local.values()), graphs=local)


class PolicyJudge:
    """`problem(body, targets)`: why the router would refuse the policy, or None."""

    def __init__(self, embedders: EmbedderCache | None = None) -> None:
        self._embedders = embedders or EmbedderCache()
        self._verdicts: OrderedDict[str, str | None] = OrderedDict()

    def problem(self, body: dict[str, Any], targets: Targets | None = None) -> str | None:
        targets = targets or Targets()
        key = json.dumps(
            [body.get("spec"), sorted(targets.models or ()), sorted(targets.graphs.items())],
            sort_keys=True,
            default=str,
        )
        if key in self._verdicts:
            self._verdicts.move_to_end(key)
            return self._verdicts[key]
        verdict = self._judge(body, targets)
        self._verdicts[key] = verdict
        if len(self._verdicts) > _MEMO_SIZE:
            self._verdicts.popitem(last=False)
        return verdict

    def _judge(self, body: dict[str, Any], targets: Targets) -> str | None:
        try:
            spec = RoutingPolicySpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            return describe_error(error)
        if spec.profiles:  # none: the router schedules with Triskel's shipped default
            try:
                build_scheduler(spec, default_registry(), PluginContext())
            except PluginConfigError as error:
                return f"spec: {error}"
        if spec.semantic is not None:
            try:
                load_semantic(spec.semantic, targets, self._embedders, "spec.semantic")
            except SemanticConfigError as error:
                return str(error)
        return None

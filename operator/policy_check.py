"""Would the router accept this RoutingPolicy? Judged with the router's own plugin registry.

The scheduling package is pure (no I/O), so the operator builds every plugin
exactly as a router would and reports a bad parameter before any router sees it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from triskel.common.resources import RoutingPolicySpec
from triskel.operator.validation import describe_error
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginConfigError


def policy_problem(body: dict[str, Any]) -> str | None:
    """Why the router would refuse this policy, or None. Plugin parameters are judged by
    building every plugin through the router's own registry (pure, no I/O)."""
    try:
        spec = RoutingPolicySpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return describe_error(error)
    if not spec.profiles:
        return None  # round-robin for every stage
    try:
        build_scheduler(spec, default_registry(), PluginContext())
    except PluginConfigError as error:
        return f"spec: {error}"
    return None

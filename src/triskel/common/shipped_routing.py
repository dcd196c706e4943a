"""Triskel's one shipped routing default, packaged: what a graph without a RoutingPolicy
routes with (the same profile the suite measures and `triskel up` runs)."""

from __future__ import annotations

from importlib import resources

import yaml

from triskel.common.routing_api import RoutingConfig

SHIPPED_ROUTING_FILE = "shipped_routing.yaml"


def shipped_routing() -> RoutingConfig:
    """The shipped default's plugins and profiles, read anew (a few lines of YAML) so no
    caller shares a mutable model with another."""
    text = resources.files("triskel.common").joinpath(SHIPPED_ROUTING_FILE).read_text()
    return RoutingConfig.model_validate(yaml.safe_load(text))

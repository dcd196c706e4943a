"""Which scheduler and serving settings apply to each model; swapped whole on reload.

A `triskel up` router has one entry for every model. In a cluster each
ServingGraph may name its own RoutingPolicy and SLOs, so each model gets its own
entry, and a reload (a policy edited with kubectl) swaps the table at once:
requests already running keep the entry they started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from triskel.common.routing_api import RoutingSettings
from triskel.router.admission import AdmissionController
from triskel.router.scheduling.scheduler import Scheduler


@dataclass(frozen=True, slots=True)
class ModelRouting:
    scheduler: Scheduler
    settings: RoutingSettings
    # The model's own queue (a policy's `admission`), so one model's burst cannot
    # starve another's.
    admission: AdmissionController


class RoutingTable:
    def __init__(
        self, default: ModelRouting, per_model: Mapping[str, ModelRouting] | None = None
    ) -> None:
        self._default = default
        self._per_model = dict(per_model or {})

    def for_model(self, model: str) -> ModelRouting:
        return self._per_model.get(model, self._default)

    @property
    def default(self) -> ModelRouting:
        return self._default

    def replace(
        self, default: ModelRouting, per_model: Mapping[str, ModelRouting] | None = None
    ) -> None:
        """Installs a new table in one step (no request sees half of it)."""
        self._default, self._per_model = default, dict(per_model or {})

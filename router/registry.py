"""Which workers serve which model in which role, and how each model is served."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from triskel.common.api import Role
from triskel.router.types import ModelCard
from triskel.router.worker_client import WorkerClient


class ServingMode(StrEnum):
    """How a model's requests flow through its pools."""

    # prefill on a prefill worker, KV transfer, decode on a decode worker
    DISAGGREGATED = "disaggregated"
    # prefill and decode on one unified worker
    UNIFIED = "unified"


class RegistryError(ValueError):
    """The workers do not form a servable deployment (names the model and what is missing)."""


@dataclass(slots=True)
class ModelPools:
    model: str
    workers: dict[Role, list[WorkerClient]] = field(default_factory=dict)
    # The smallest context window among the workers (every request checks it): set by
    # the registry once the pools are complete.
    max_context_tokens: int = 0

    def of(self, role: Role) -> list[WorkerClient]:
        return self.workers.get(role, [])

    @property
    def mode(self) -> ServingMode:
        if self.of(Role.PREFILL) and self.of(Role.DECODE):
            return ServingMode.DISAGGREGATED
        return ServingMode.UNIFIED

    @property
    def encoders(self) -> list[WorkerClient]:
        return self.of(Role.ENCODE) or self.of(Role.UNIFIED)

    @property
    def any_worker(self) -> WorkerClient:
        """One worker; all of a model's workers agree on block size (checked at start)."""
        return next(w for ws in self.workers.values() for w in ws)


class WorkerRegistry:
    """Connected workers grouped by model and role."""

    def __init__(self, workers: Sequence[WorkerClient]) -> None:
        """Strict (a fixed deployment): RegistryError when a model cannot be served."""
        self._models: dict[str, ModelPools] = {}
        problems = self.replace(workers)
        if problems:
            raise RegistryError(problems[0])

    def replace(self, workers: Sequence[WorkerClient]) -> list[str]:
        """Swaps in a new worker set (discovery); models that cannot be served with it are
        left out until they can, and their problems returned."""
        models: dict[str, ModelPools] = {}
        for worker in workers:
            ident = worker.identity
            pools = models.setdefault(ident.model, ModelPools(ident.model))
            pools.workers.setdefault(ident.role, []).append(worker)
        problems = []
        for model, pools in list(models.items()):
            try:
                _check_servable(pools)
            except RegistryError as error:
                problems.append(str(error))
                del models[model]
                continue
            pools.max_context_tokens = min(
                w.identity.max_context_tokens for ws in pools.workers.values() for w in ws
            )
        self._models = models
        # Read on every request (metric labels, the models list): built once per worker set.
        self._cards = [
            ModelCard(name, pools.max_context_tokens) for name, pools in sorted(models.items())
        ]
        self._all = list(workers)
        return problems

    def pools(self, model: str) -> ModelPools | None:
        return self._models.get(model)

    def model_cards(self) -> list[ModelCard]:
        return list(self._cards)

    def worker_counts(self) -> dict[tuple[str, str], int]:
        """Workers per (model, role) now: what `triskel_workers` shows as pools scale."""
        return {
            (model, str(role)): len(workers)
            for model, pools in self._models.items()
            for role, workers in pools.workers.items()
        }

    def all_workers(self) -> list[WorkerClient]:
        """Every connected worker, including those of models not servable right now."""
        return list(self._all)


def _check_servable(pools: ModelPools) -> None:
    has_prefill, has_decode = bool(pools.of(Role.PREFILL)), bool(pools.of(Role.DECODE))
    if has_prefill != has_decode:
        missing = "decode" if has_prefill else "prefill"
        raise RegistryError(f"model {pools.model}: has no {missing} workers to pair with")
    if not (has_prefill or pools.of(Role.UNIFIED)):
        raise RegistryError(f"model {pools.model}: needs prefill + decode or unified workers")
    block_sizes = {w.identity.block_size_tokens for ws in pools.workers.values() for w in ws}
    if len(block_sizes) > 1:
        # A mismatch would make KV handles and prefix hashes disagree silently.
        raise RegistryError(
            f"model {pools.model}: workers disagree on block_size_tokens {sorted(block_sizes)}"
        )

"""Picking a worker for a stage. Round-robin for now; the scheduling framework replaces it.

Pure: no I/O, so the simulator can drive the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class Picker(Protocol):
    """Chooses one of `candidates` for `stage` ("encode", "prefill", "decode", "unified")."""

    def pick(self, stage: str, model: str, candidates: Sequence[T]) -> T: ...


class RoundRobinPicker:
    """Cycles through the candidates of each (model, stage) independently."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def pick(self, stage: str, model: str, candidates: Sequence[T]) -> T:
        if not candidates:
            raise ValueError(f"no candidates for stage {stage} of model {model}")
        key = (model, stage)
        index = self._next.get(key, 0)
        self._next[key] = index + 1
        return candidates[index % len(candidates)]

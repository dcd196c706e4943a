"""Status conditions (`Ready`, `Progressing`, `Degraded`), pure.

A condition keeps its `lastTransitionTime` while its status stays the same, so
`kubectl describe` shows when the pool became ready, not when it was last
reconciled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConditionUpdate:
    type: str
    is_true: bool
    reason: str
    message: str = ""


def merge_conditions(
    previous: Sequence[Json],
    updates: Sequence[ConditionUpdate],
    generation: int | None,
    now: str,
) -> list[Json]:
    """`previous` with `updates` applied, sorted by type (stable output, no-op patches)."""
    by_type = {c["type"]: dict(c) for c in previous if "type" in c}
    for update in updates:
        status = "True" if update.is_true else "False"
        old = by_type.get(update.type)
        changed = old is None or old.get("status") != status
        by_type[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": now if changed or old is None else old["lastTransitionTime"],
            "observedGeneration": generation,
        }
    return [by_type[t] for t in sorted(by_type)]


def is_true(conditions: Sequence[Json], condition_type: str) -> bool:
    return any(c.get("type") == condition_type and c.get("status") == "True" for c in conditions)

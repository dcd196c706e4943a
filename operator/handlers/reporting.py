"""How every kind reports a problem: `Degraded=True`, `Ready=False`, one Warning event.

The event is posted only when the problem is new (its message differs from the
Degraded condition already stored), so a handler that retries or a timer that
re-checks does not post the same warning every round.
"""

from __future__ import annotations

import kopf

from triskel.operator.conditions import DEGRADED, READY, ConditionUpdate, merge_conditions


def report_problem(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    now: str,
    reason: str,
    message: str,
) -> None:
    """Writes the problem into `patch.status.conditions` and warns once per new message.

    `message` names the object (`WorkerPool ns/name: ...`): events and the operator's
    log lines are read away from the object they concern."""
    previous = status.get("conditions", [])
    already = any(
        c.get("type") == DEGRADED and c.get("status") == "True" and c.get("message") == message
        for c in previous
    )
    if not already:
        kopf.warn(body, reason=reason, message=message)
    patch.status["conditions"] = merge_conditions(
        previous,
        [
            ConditionUpdate(DEGRADED, True, reason, message),
            ConditionUpdate(READY, False, reason, message),
        ],
        meta.get("generation"),
        now,
    )

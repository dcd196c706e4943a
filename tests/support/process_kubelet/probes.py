"""Probe timing: when a probe runs and when its results change the container's state.

A probe first runs `initialDelaySeconds` after the container started, then every
`periodSeconds` (default 10), each attempt bounded by `timeoutSeconds` (default 1).
Its state flips to failing after `failureThreshold` (default 3) failures in a row,
and to passing after `successThreshold` (default 1) successes in a row. What a flip
means is the container's business (`container.py`): startup gates the other two,
liveness restarts, readiness marks the container ready.

`max_period_s`, when set, caps `periodSeconds`: a test knob for pods whose probes were
written for real clusters (a 10 s startup period), never for the pods a test writes.
For the probes that kill (liveness, startup) the cap also raises `failureThreshold` so
that the failures tolerated still span as long as the pod's own spec says: the cap makes
a probe notice sooner, not give up sooner (a 20 s liveness period probed every second
would otherwise kill a CPU-starved container after 3 s instead of 60 s).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .actions import ActionContext, Outcome, run_action
from .api import Json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeTiming:
    initial_delay_s: float
    period_s: float
    timeout_s: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(
        cls, spec: Json, max_period_s: float | None, keep_failure_window: bool = False
    ) -> ProbeTiming:
        own_period_s = float(spec.get("periodSeconds", 10))
        period_s = own_period_s if max_period_s is None else min(own_period_s, max_period_s)
        failure_threshold = int(spec.get("failureThreshold", 3))
        if keep_failure_window and period_s < own_period_s:
            failure_threshold = math.ceil(failure_threshold * own_period_s / period_s)
        return cls(
            initial_delay_s=float(spec.get("initialDelaySeconds", 0)),
            period_s=period_s,
            timeout_s=float(spec.get("timeoutSeconds", 1)),
            success_threshold=int(spec.get("successThreshold", 1)),
            failure_threshold=failure_threshold,
        )


async def probe_states(
    name: str, spec: Json, context: ActionContext, timing: ProbeTiming
) -> AsyncIterator[tuple[bool, Outcome]]:
    """(passing, last outcome) each time the probe's state flips, first flip included;
    runs until the consumer stops iterating."""
    state: bool | None = None
    successes = failures = 0
    await asyncio.sleep(timing.initial_delay_s)
    while True:
        outcome = await run_action(spec, context, timing.timeout_s)
        if outcome.ok:
            successes, failures = successes + 1, 0
        else:
            successes, failures = 0, failures + 1
            log.info("%s probe failed (%d in a row): %s", name, failures, outcome.message)
        if state is not True and successes >= timing.success_threshold:
            state = True
            yield True, outcome
        elif state is not False and failures >= timing.failure_threshold:
            state = False
            yield False, outcome
        # The probe's own schedule: a kubelet probes on a period, not on a condition.
        await asyncio.sleep(timing.period_s)

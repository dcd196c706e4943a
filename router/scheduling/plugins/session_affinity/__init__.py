"""session-affinity-scorer: send a session's requests back to the worker that served it.

A multi-turn conversation re-sends its whole history each turn; the worker that
served the last turn holds that history's KV blocks. Requests naming a session in
a header (`x-session-id` by default) score 1 on that worker and 0 on the others.
Without the header, or for a session not seen within `ttlSeconds` (or whose
worker is not a candidate), every candidate scores 0.5: no preference, so the
other scorers decide. This is the session-header routing of `sglang-router` and
`vllm-router` (there a consistent hash; here the last pick, so it follows load).

The plugin also observes picks: after each one it records session → worker, per
(model, stage) so a session's prefill and decode workers are remembered apart.
Memory is bounded: an LRU of `maxSessions` entries, each forgotten `ttlSeconds`
after its last pick (time from `context.clock`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, field_validator

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest, Stage

TYPE_NAME = "session-affinity-scorer"
SUMMARY = "Prefers the worker that served the request's session last (session header)."

NEUTRAL_SCORE = 0.5

_SessionKey = tuple[str, Stage, str]


class SessionAffinityParameters(PluginParameters):
    header: Annotated[str, Field(min_length=1)] = "x-session-id"
    max_sessions: Annotated[int, Field(ge=1)] = 100_000
    ttl_seconds: Annotated[float, Field(gt=0)] = 600.0

    @field_validator("header")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        # Header names are case-insensitive and the router passes them lower-cased.
        return value.lower()


class SessionAffinityScorer:
    """Scorer and PickObserver over a bounded, expiring map session → last worker id."""

    def __init__(
        self, name: str, parameters: SessionAffinityParameters, clock: Callable[[], float]
    ) -> None:
        self.name = name
        self._header = parameters.header
        self._max_sessions = parameters.max_sessions
        self._ttl_s = parameters.ttl_seconds
        self._clock = clock
        # Least recently picked first; values are (worker id, time of the last pick).
        self._sessions: OrderedDict[_SessionKey, tuple[str, float]] = OrderedDict()

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        worker_id = self._last_worker(request)
        if worker_id is None or not any(c.worker_id == worker_id for c in candidates):
            return [NEUTRAL_SCORE] * len(candidates)
        return [1.0 if c.worker_id == worker_id else 0.0 for c in candidates]

    def on_picked(self, request: SchedulingRequest, endpoint: Endpoint) -> None:
        key = self._key(request)
        if key is None:
            return
        now_s = self._clock()
        self._sessions[key] = (endpoint.worker_id, now_s)
        self._sessions.move_to_end(key)
        self._forget_expired(now_s)
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)

    def __len__(self) -> int:
        """Sessions remembered (expired ones may linger until the next pick)."""
        return len(self._sessions)

    def _last_worker(self, request: SchedulingRequest) -> str | None:
        key = self._key(request)
        entry = self._sessions.get(key) if key is not None else None
        if entry is None:
            return None
        worker_id, picked_at_s = entry
        return worker_id if self._clock() - picked_at_s <= self._ttl_s else None

    def _key(self, request: SchedulingRequest) -> _SessionKey | None:
        session = request.headers.get(self._header)
        if session is None:
            # A caller other than the router (e.g. a trace replay) may keep original case.
            session = next(
                (v for k, v in request.headers.items() if k.lower() == self._header), None
            )
        return (request.model, request.stage, session) if session else None

    def _forget_expired(self, now_s: float) -> None:
        # Entries are in pick order, so the expired ones are all at the front.
        sessions = self._sessions
        while sessions:
            _, (_, picked_at_s) = next(iter(sessions.items()))
            if now_s - picked_at_s <= self._ttl_s:
                break
            sessions.popitem(last=False)


def create(
    name: str, parameters: Mapping[str, Any], context: PluginContext
) -> SessionAffinityScorer:
    parsed = parse_parameters(SessionAffinityParameters, name, parameters)
    return SessionAffinityScorer(name, parsed, context.clock)

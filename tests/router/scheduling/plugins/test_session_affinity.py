"""session-affinity-scorer: a session's last worker scores 1, others 0; bounded LRU with TTL."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import max_score, queue_scorer, session_affinity
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import CycleState, SchedulingRequest, Stage

from support.scheduling import endpoint, request, scheduler_from

CANDIDATES = [endpoint("a"), endpoint("b"), endpoint("c")]


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def session(session_id: str, stage: Stage = Stage.PREFILL) -> SchedulingRequest:
    return request(stage=stage, headers={"x-session-id": session_id})


def make(
    parameters: Mapping[str, object] | None = None, clock: FakeClock | None = None
) -> session_affinity.SessionAffinityScorer:
    context = PluginContext(clock=clock if clock is not None else FakeClock())
    return session_affinity.create("sticky", dict(parameters or {}), context)


def scores(scorer: session_affinity.SessionAffinityScorer, req: SchedulingRequest) -> list[float]:
    return list(scorer.score(req, CANDIDATES, CycleState()))


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"maxSessions": 0}, "maxSessions"),
        ({"ttlSeconds": 0}, "ttlSeconds"),
        ({"header": ""}, "header"),
        ({"cookie": "sid"}, "cookie"),
    ],
)
def test_bad_parameters_are_refused_naming_plugin_and_field(
    parameters: dict[str, object], field: str
) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'sticky'.*parameters\.{field}"):
        make(parameters)


def test_no_header_or_unknown_session_is_neutral() -> None:
    scorer = make()
    assert scores(scorer, request()) == [0.5, 0.5, 0.5]
    assert scores(scorer, session("never-seen")) == [0.5, 0.5, 0.5]


def test_last_worker_scores_one_and_follows_the_latest_pick() -> None:
    scorer = make()
    scorer.on_picked(session("s1"), CANDIDATES[1])
    assert scores(scorer, session("s1")) == [0.0, 1.0, 0.0]
    # Another session is unaffected.
    assert scores(scorer, session("s2")) == [0.5, 0.5, 0.5]
    # The session moved (e.g. b was overloaded and the other scorers won): follow it.
    scorer.on_picked(session("s1"), CANDIDATES[2])
    assert scores(scorer, session("s1")) == [0.0, 0.0, 1.0]


def test_worker_gone_from_candidates_is_neutral() -> None:
    scorer = make()
    scorer.on_picked(session("s1"), endpoint("gone"))
    assert scores(scorer, session("s1")) == [0.5, 0.5, 0.5]


def test_requests_without_the_header_are_not_remembered() -> None:
    scorer = make()
    scorer.on_picked(request(), CANDIDATES[0])
    assert len(scorer) == 0


def test_stages_are_remembered_apart() -> None:
    scorer = make()
    scorer.on_picked(session("s1", Stage.PREFILL), CANDIDATES[0])
    scorer.on_picked(session("s1", Stage.DECODE), CANDIDATES[2])
    assert scores(scorer, session("s1", Stage.PREFILL)) == [1.0, 0.0, 0.0]
    assert scores(scorer, session("s1", Stage.DECODE)) == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("elapsed_s", "expected"),
    [
        (0.0, [1.0, 0.0, 0.0]),
        # Exactly the TTL is still within it.
        (600.0, [1.0, 0.0, 0.0]),
        (600.5, [0.5, 0.5, 0.5]),
    ],
)
def test_sessions_expire_after_the_ttl(elapsed_s: float, expected: list[float]) -> None:
    clock = FakeClock()
    scorer = make(clock=clock)
    scorer.on_picked(session("s1"), CANDIDATES[0])
    clock.now_s = elapsed_s
    assert scores(scorer, session("s1")) == expected


def test_expired_sessions_are_dropped_on_the_next_pick() -> None:
    clock = FakeClock()
    scorer = make({"ttlSeconds": 10}, clock)
    scorer.on_picked(session("old"), CANDIDATES[0])
    clock.now_s = 5.0
    scorer.on_picked(session("mid"), CANDIDATES[1])
    clock.now_s = 12.0
    scorer.on_picked(session("new"), CANDIDATES[2])
    # "old" was picked 12 s ago (> 10), "mid" 7 s ago: only "old" goes.
    assert len(scorer) == 2
    assert scores(scorer, session("mid")) == [0.0, 1.0, 0.0]


def test_lru_keeps_at_most_max_sessions_and_drops_the_least_recent() -> None:
    scorer = make({"maxSessions": 2})
    scorer.on_picked(session("s1"), CANDIDATES[0])
    scorer.on_picked(session("s2"), CANDIDATES[1])
    # Picking s1 again makes s2 the least recent, so s3 pushes s2 out.
    scorer.on_picked(session("s1"), CANDIDATES[0])
    scorer.on_picked(session("s3"), CANDIDATES[2])
    assert len(scorer) == 2
    assert scores(scorer, session("s1")) == [1.0, 0.0, 0.0]
    assert scores(scorer, session("s2")) == [0.5, 0.5, 0.5]
    assert scores(scorer, session("s3")) == [0.0, 0.0, 1.0]


def test_header_name_is_case_insensitive() -> None:
    scorer = make({"header": "X-Conversation-Id"})
    mixed_case = request(headers={"X-CONVERSATION-ID": "c1"})
    scorer.on_picked(mixed_case, CANDIDATES[1])
    assert scores(scorer, request(headers={"x-conversation-id": "c1"})) == [0.0, 1.0, 0.0]


def test_runs_in_a_scheduler_and_sticks_despite_load() -> None:
    scheduler = scheduler_from(
        [session_affinity, queue_scorer, max_score],
        {
            "plugins": [
                {"type": "session-affinity-scorer", "name": "sticky"},
                {"type": "queue-scorer"},
                {"type": "max-score-picker"},
            ],
            "profiles": [
                {
                    "name": "unified",
                    "plugins": [
                        {"pluginRef": "sticky", "weight": 3},
                        {"pluginRef": "queue-scorer", "weight": 1},
                        {"pluginRef": "max-score-picker"},
                    ],
                }
            ],
        },
    )
    turn = request(stage=Stage.UNIFIED, headers={"x-session-id": "chat-1"})
    first = scheduler.schedule(turn, [endpoint("a", waiting=3), endpoint("b", waiting=0)])
    # Neutral 3·0.5 for both, so the queue decides: b.
    assert first.endpoint.worker_id == "b"
    second = scheduler.schedule(turn, [endpoint("a", waiting=0), endpoint("b", waiting=3)])
    # b: 3·1 + 0 = 3 beats a: 3·0 + 1 = 1, though b's queue is now the longer.
    assert second.endpoint.worker_id == "b"
    assert second.scores == pytest.approx({"a": 1.0, "b": 3.0})

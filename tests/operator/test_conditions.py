"""Status conditions keep their transition time while their status stays the same."""

from __future__ import annotations

from triskel.operator.conditions import (
    DEGRADED,
    READY,
    ConditionUpdate,
    is_true,
    merge_conditions,
)


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = merge_conditions([], [ConditionUpdate(READY, False, "Starting")], 1, "t1")
    same = merge_conditions(first, [ConditionUpdate(READY, False, "StillStarting")], 2, "t2")
    # Same status: the time it became False stays; reason and generation update.
    assert (same[0]["lastTransitionTime"], same[0]["reason"], same[0]["observedGeneration"]) == (
        "t1",
        "StillStarting",
        2,
    )
    flipped = merge_conditions(same, [ConditionUpdate(READY, True, "AllReady")], 2, "t3")
    assert flipped[0]["lastTransitionTime"] == "t3" and is_true(flipped, READY)


def test_conditions_are_sorted_by_type_and_others_are_kept() -> None:
    merged = merge_conditions(
        [{"type": "Custom", "status": "True", "lastTransitionTime": "t0"}],
        [ConditionUpdate(READY, True, "R"), ConditionUpdate(DEGRADED, False, "AsExpected")],
        1,
        "t1",
    )
    assert [c["type"] for c in merged] == ["Custom", DEGRADED, READY]

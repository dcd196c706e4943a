"""Role switching between a graph's prefill and decode pools, worked by hand."""

from __future__ import annotations

from triskel.common.profiles import load_profile
from triskel.planner.planner import Decision, StageSpec
from triskel.planner.switching import with_role_switches

from .test_sizing import profile

PREFILL = StageSpec("p", "prefill", profile(), 1, 8)
DECODE = StageSpec("d", "decode", profile(), 1, 8)


def decide(stage: str, current: int, desired: int, with_headroom: int | None = None) -> Decision:
    numbers: dict[str, float | str] = {}
    if with_headroom is not None:
        numbers["replicas_with_headroom"] = with_headroom
    return Decision(stage, current, desired, "planned", numbers)


def test_growth_is_covered_by_the_other_stages_spare_replicas() -> None:
    # Prefill wants 3 → 5; decode holds 6 while 4 would fit its load with headroom (its
    # scale-down window still running, so its decision keeps 6): 2 switch to prefill.
    grow, donor = with_role_switches(
        (decide("p", 3, 5), decide("d", 6, 6, with_headroom=4)), (PREFILL, DECODE), 10.0
    )
    assert (grow.desired, grow.switched_in, grow.switched_from) == (5, 2, "d")
    assert (donor.desired, donor.switched_out) == (4, 2)
    assert "2 switched from d (10 s, not a 60 s cold start)" in grow.reason
    # The donor's count falls for the switch: its reason says so first (the log's kind).
    assert donor.reason == "switch: 2 to p (planned)"


def test_only_what_is_spare_moves_and_the_rest_starts_cold() -> None:
    # Prefill wants 3 more; decode can spare one (5 held, 4 with headroom): one switches,
    # two start from cold (desired stays 6: the actuator starts 6 − 3 − 1 = 2).
    grow, donor = with_role_switches(
        (decide("p", 3, 6), decide("d", 5, 5, with_headroom=4)), (PREFILL, DECODE), 10.0
    )
    assert (grow.switched_in, donor.switched_out, donor.desired) == (1, 1, 4)


def test_no_switch_without_spare_or_when_a_cold_start_is_as_quick() -> None:
    busy = (decide("p", 3, 5), decide("d", 4, 4, with_headroom=4))
    assert with_role_switches(busy, (PREFILL, DECODE), 10.0) == busy
    spare = (decide("p", 3, 5), decide("d", 6, 6, with_headroom=4))
    assert with_role_switches(spare, (PREFILL, DECODE), 60.0) == spare  # startup is 60 s


def test_pools_on_different_profiles_never_switch() -> None:
    other = StageSpec("d", "decode", load_profile("llama-3.1-8b-l4"), 1, 8)
    spare = (decide("p", 3, 5), decide("d", 6, 6, with_headroom=4))
    assert with_role_switches(spare, (PREFILL, other), 10.0) == spare

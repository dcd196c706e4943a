from __future__ import annotations

import pytest

from triskel.router.picker import RoundRobinPicker


def test_round_robin_cycles_per_model_and_stage_independently() -> None:
    picker = RoundRobinPicker()
    picks = [picker.pick("prefill", "m", ["a", "b", "c"]) for _ in range(4)]
    # Four picks over three candidates wrap around once.
    assert picks == ["a", "b", "c", "a"]
    # A different stage starts its own cycle.
    assert picker.pick("decode", "m", ["x", "y"]) == "x"
    assert picker.pick("prefill", "other", ["a", "b"]) == "a"


def test_no_candidates_is_an_error_naming_stage_and_model() -> None:
    with pytest.raises(ValueError, match="stage decode of model m"):
        RoundRobinPicker().pick("decode", "m", [])

"""`routing.timeouts`: every bound has a floor and a ceiling, and a bad one names itself."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from triskel.common.routing_api import RoutingSettings, TimeoutsSpec


def test_the_defaults_are_the_documented_ones() -> None:
    # docs/routing.md, "Failures", lists these.
    assert TimeoutsSpec() == TimeoutsSpec(
        encode_s=60,
        prefill_s=300,
        decode_s=1800,
        token_idle_s=60,
        kv_hold_ms=30_000,
        worker_silence_s=5,
    )
    assert RoutingSettings().timeouts == TimeoutsSpec()


@pytest.mark.parametrize(
    ("timeouts", "field"),
    [
        # Under a second of silence is a GC pause or a busy CI machine, not a dead worker.
        ({"workerSilenceS": 0.5}, "workerSilenceS"),
        ({"workerSilenceS": 601}, "workerSilenceS"),
        ({"tokenIdleS": 0}, "tokenIdleS"),
        ({"decodeS": 0}, "decodeS"),
        ({"prefillS": 3601}, "prefillS"),
        ({"kvHoldMs": 999}, "kvHoldMs"),
        ({"encodeS": "soon"}, "encodeS"),
        ({"idleS": 3}, "idleS"),  # unknown: refused, not ignored
    ],
)
def test_a_bound_out_of_range_is_refused_naming_it(timeouts: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RoutingSettings.model_validate({"timeouts": timeouts})
    (error,) = caught.value.errors()
    assert error["loc"] == ("timeouts", field)


def test_the_bounds_are_read_in_camel_case() -> None:
    settings = RoutingSettings.model_validate({"timeouts": {"workerSilenceS": 2.5}})
    assert settings.timeouts.worker_silence_s == 2.5
    assert settings.timeouts.decode_s == 1800  # the others keep their defaults

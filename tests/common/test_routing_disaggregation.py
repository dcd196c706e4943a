"""`routing.disaggregation.maxLocalPrefillTokens`: conditional's threshold, refused where it
would do nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from triskel.common.routing_api import RoutingSettings


@pytest.mark.parametrize("mode", ["always", "adaptive", "never"])
def test_a_changed_threshold_outside_conditional_is_refused(mode: str) -> None:
    spec = {"disaggregation": {"mode": mode, "maxLocalPrefillTokens": 2048}}
    with pytest.raises(ValidationError, match="maxLocalPrefillTokens applies to mode conditional"):
        RoutingSettings.model_validate(spec)


def test_the_default_threshold_passes_with_any_mode() -> None:
    # Kubernetes fills the schema's default into every object, whatever its mode.
    spec = {"disaggregation": {"mode": "adaptive", "maxLocalPrefillTokens": 512}}
    assert RoutingSettings.model_validate(spec).disaggregation.mode == "adaptive"

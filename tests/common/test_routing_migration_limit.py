"""`routing.migrationLimit`: how often one answer may continue on another worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from triskel.common.resources import RoutingPolicySpec
from triskel.common.routing_api import RoutingSettings


def test_the_default_is_the_documented_one() -> None:
    # docs/routing.md, "Failures": 3, and a RoutingPolicy agrees with a `triskel up` file.
    assert RoutingSettings().migration_limit == 3
    assert RoutingPolicySpec().migration_limit == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),  # migration off: a failure mid-answer ends it, as before
        (10, 10),  # the ceiling, as for maxAttempts
    ],
)
def test_a_limit_in_range_is_read(value: int, expected: int) -> None:
    assert RoutingSettings.model_validate({"migrationLimit": value}).migration_limit == expected


@pytest.mark.parametrize("value", [-1, 11, "many", 1.5])
@pytest.mark.parametrize("model", [RoutingSettings, RoutingPolicySpec])
def test_a_limit_out_of_range_is_refused_naming_it(
    value: object, model: type[RoutingSettings] | type[RoutingPolicySpec]
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"migrationLimit": value})
    (error,) = caught.value.errors()
    assert error["loc"] == ("migrationLimit",)

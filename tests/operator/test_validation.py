"""A spec the models refuse is described in one line naming each field and value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from triskel.common.api import WorkerPoolSpec
from triskel.operator.validation import describe_error


def test_each_field_is_named_under_spec_with_its_value() -> None:
    with pytest.raises(ValidationError) as raised:
        WorkerPoolSpec.model_validate({"role": "chef", "model": "m", "resources": {"gpus": -1}})
    message = describe_error(raised.value)
    assert "spec.role:" in message and "'chef'" in message
    assert "spec.resources.gpus:" in message and "(got -1)" in message

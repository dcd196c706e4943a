"""ValidationErrors as `field: message`: list items named where the input names them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from triskel.common.validation_errors import field_path, first_issue


class _Entry(BaseModel):
    name: Any = None
    size: int

    @field_validator("size")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value


class _File(BaseModel):
    entries: list[_Entry]


def _error(data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        _File.model_validate(data)
    return raised.value


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        # A named entry is named: the index alone makes a reader count.
        ({"name": "big", "size": "x"}, "entries[1](big).size"),
        # No name, an empty one or one that is not text: the index only.
        ({"size": "x"}, "entries[1].size"),
        ({"name": "", "size": "x"}, "entries[1].size"),
        ({"name": {"a": 1}, "size": "x"}, "entries[1].size"),
    ],
)
def test_the_path_names_list_items_by_their_name(entry: dict[str, Any], path: str) -> None:
    data = {"entries": [{"name": "ok", "size": 1}, entry]}
    issue = _error(data).errors()[0]
    assert field_path(issue["loc"], data) == path


def test_the_first_issue_drops_pydantics_value_error_prefix() -> None:
    data = {"entries": [{"name": "zero", "size": 0}]}
    # The validator's own words, after the path; pydantic's "Value error, " is noise.
    assert first_issue(_error(data), data) == "entries[0](zero).size: must be positive"


def test_an_issue_with_the_whole_document_has_no_path() -> None:
    assert first_issue(_error([]), []) == "Input should be a valid dictionary or instance of _File"

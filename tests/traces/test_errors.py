"""TraceError reads like a compiler diagnostic: file:line: field: problem."""

from __future__ import annotations

import pytest

from triskel.traces.errors import TraceError


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        (17, "input_length", "t.jsonl:17: input_length: must be >= 1"),
        (3, None, "t.jsonl:3: must be >= 1"),  # invalid JSON: no field to name
        (None, "spec.ratePerS", "t.jsonl: spec.ratePerS: must be >= 1"),  # YAML: no line
        (None, None, "t.jsonl: must be >= 1"),  # the whole file is wrong
    ],
)
def test_message_names_what_is_known(line: int | None, field: str | None, expected: str) -> None:
    error = TraceError("t.jsonl", line, field, "must be >= 1")
    assert str(error) == expected
    assert (error.path, error.line, error.field) == ("t.jsonl", line, field)


def test_is_a_value_error() -> None:
    # Callers that validate configuration catch ValueError for every bad input.
    assert isinstance(TraceError("t.csv", 1, None, "x"), ValueError)

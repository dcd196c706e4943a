"""Field checks: values named in the client's terms, JSON's types kept apart from Python's."""

from __future__ import annotations

import pytest

from triskel.common.sampling import is_absent_or
from triskel.workers.openai_http.errors import ApiError
from triskel.workers.openai_http.fields import (
    json_object,
    optional_bool,
    optional_positive_int,
    shown,
    token_ids,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"a": 1}, "an object"),
        ([], "an empty array"),
        ([1], "an array"),
        ("x" * 50, '"' + "x" * 36 + "..."),
        (None, "null"),
        (2**64, str(2**64)),  # beyond JSON's integers: shown, not an error of its own
    ],
)
def test_values_are_shown_short(value: object, text: str) -> None:
    assert shown(value) == text


def test_json_true_is_not_the_integer_1() -> None:
    assert is_absent_or(1)(None) and is_absent_or(1)(1)
    assert not is_absent_or(1)(True)
    with pytest.raises(ApiError, match="n: must be an integer >= 1, got true"):
        optional_positive_int({"n": True}, "n")
    with pytest.raises(ApiError, match=r"p\[0\]: a token id must be an integer >= 0, got true"):
        token_ids([True], "p")


def test_absent_fields_take_their_default() -> None:
    assert optional_bool({}, "stream") is False
    assert optional_positive_int({"max_tokens": None}, "max_tokens") is None
    with pytest.raises(ApiError, match=r"stream_options\.include_usage: must be true or false"):
        optional_bool({"include_usage": 1}, "include_usage", "stream_options.")
    with pytest.raises(ApiError, match="body: must be a JSON object, got an array"):
        json_object([1], "body")

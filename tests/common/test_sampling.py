"""The sampling-field check both the router's HTTP front and the worker's API run."""

from __future__ import annotations

import pytest

from triskel.common.request_limits import LimitError
from triskel.common.sampling import parse_sampling, shown


@pytest.mark.parametrize(
    ("fields", "is_chat", "param"),
    [
        ({"temperature": "x"}, True, "temperature"),
        ({"temperature": True}, True, "temperature"),  # JSON true is not a number
        ({"top_p": 0}, False, "top_p"),  # vLLM: (0, 1]
        ({"min_tokens": 1.0}, False, "min_tokens"),
        ({"seed": 1.5}, False, "seed"),
        ({"stop": {"a": 1}}, True, "stop"),
        ({"tools": 5}, True, "tools"),
        ({"include_stop_str_in_output": True}, False, "include_stop_str_in_output"),
        ({"regex": "a+"}, False, "regex"),  # SGLang's structured output
        # logprobs: false is chat's "none"; completions take an integer or nothing.
        ({"logprobs": True}, True, "logprobs"),
        ({"logprobs": False}, False, "logprobs"),
        ({"echo": True}, False, "echo"),
    ],
)
def test_a_bad_or_unsupported_field_is_named(
    fields: dict[str, object], is_chat: bool, param: str
) -> None:
    with pytest.raises(LimitError) as raised:
        parse_sampling(fields, is_chat)
    assert raised.value.field_name == param


def test_honoured_fields_are_returned_and_knobs_only_checked() -> None:
    sampling = parse_sampling(
        {"stop": "\n", "seed": -3, "temperature": 1, "top_k": -1, "min_tokens": 0, "echo": True},
        is_chat=True,  # echo is a completions field: chat ignores it
    )
    assert (sampling.stop, sampling.seed, sampling.temperature) == (("\n",), -3, 1.0)
    # The cache key holds what changes the answer, in a stable order.
    assert [name for name, _ in sampling.cache_key] == [
        "min_tokens",
        "seed",
        "stop",
        "temperature",
        "top_k",
    ]


def test_values_beyond_json_are_shown_not_raised() -> None:
    assert shown(2**70) == str(2**70)


@pytest.mark.parametrize("is_chat", [True, False])
def test_unsent_and_null_unsupported_fields_pass_and_the_first_at_fault_is_named(
    is_chat: bool,
) -> None:
    # Only the fields a request sends are checked: each check must pass a null one.
    names = ["tools", "n", "logit_bias", "regex", "logprobs", "best_of", "echo"]
    parse_sampling(dict.fromkeys(names), is_chat)
    # Several at fault: the same one is named whatever order the body lists them in.
    body = {"regex": "a+", "n": 2, "tools": [{"type": "function"}]}
    with pytest.raises(LimitError) as raised:
        parse_sampling(body, is_chat)
    assert raised.value.field_name == "tools"
    with pytest.raises(LimitError) as raised:
        parse_sampling(dict(reversed(body.items())), is_chat)
    assert raised.value.field_name == "tools"

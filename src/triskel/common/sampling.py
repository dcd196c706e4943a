"""The OpenAI sampling fields: types and ranges checked, unsupported features refused. Pure.

The router's HTTP front and the worker's vLLM-compatible API run this one check, so
both take and refuse the same bodies with the same messages. Honoured: `stop` (the
answer ends before it), `seed` (passed to the engine), `temperature` (keys the router's
semantic cache). Accepted with their types and ranges checked, as engine knobs the mock
engine does not model: `top_p`, `top_k`, `min_p`, `min_tokens`, the penalties. Refused
with an error naming the field, as the answer could not be what they ask: tool calling
(`tools`, `tool_choice` other than "none", `functions`, `function_call`), structured
output (`response_format` other than text), `logit_bias`, log probabilities, `n` and
`best_of` above 1, `echo`, and vLLM's and SGLang's extensions that change the answer
(`include_stop_str_in_output`, `stop_token_ids`, `bad_words`, guided decoding...).
Errors are `LimitError`s naming the field, which each front turns into its own 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from triskel.common.request_limits import LimitError

Body = Mapping[str, object]
# A check of one field: whether its value is served, and why not when it is not.
Support = tuple[Callable[[object], bool], str]

MAX_TEMPERATURE = 2.0
# name: (lowest, highest, whether the lowest is allowed), after vLLM's SamplingParams.
_NUMBER_RANGES = {
    "temperature": (0.0, MAX_TEMPERATURE, True),
    "top_p": (0.0, 1.0, False),
    "min_p": (0.0, 1.0, True),
    "presence_penalty": (-2.0, 2.0, True),
    "frequency_penalty": (-2.0, 2.0, True),
    "repetition_penalty": (0.0, 2.0**31, False),
}


def is_absent_or(*allowed: object) -> Callable[[object], bool]:
    # Compared by type as well, because True == 1 in Python but not in JSON.
    return lambda value: (
        value is None or any(type(value) is type(a) and value == a for a in allowed)
    )


_UNSUPPORTED: dict[str, Support] = {
    "tools": (lambda v: v is None or v == [], "tool calling is not supported"),
    "tool_choice": (is_absent_or("none"), "tool calling is not supported"),
    "functions": (is_absent_or(), "function calling is not supported"),
    "function_call": (is_absent_or("none"), "function calling is not supported"),
    "response_format": (
        lambda v: v is None or v == {"type": "text"},
        'structured output is not supported; only {"type": "text"}',
    ),
    "logit_bias": (lambda v: v is None or v == {}, "logit bias is not supported"),
    "top_logprobs": (is_absent_or(), "log probabilities are not supported"),
    "n": (is_absent_or(1), "only 1 choice per request is supported"),
    # vLLM's extensions: the stop string is never shown, and stops are strings.
    "include_stop_str_in_output": (
        is_absent_or(False),
        "only false is supported (the answer ends before the stop string)",
    ),
    "stop_token_ids": (
        lambda v: v is None or v == [],
        "stop token ids are not supported; send stop strings in stop",
    ),
    "bad_words": (lambda v: v is None or v == [], "bad words are not supported"),
    "allowed_token_ids": (is_absent_or(), "restricting the vocabulary is not supported"),
    "prompt_logprobs": (is_absent_or(), "log probabilities are not supported"),
    "logits_processors": (is_absent_or(), "logits processors are not supported"),
    # vLLM's and SGLang's structured output.
    **{
        name: (is_absent_or(), "structured output is not supported")
        for name in (
            "structured_outputs",
            "guided_json",
            "guided_regex",
            "guided_choice",
            "guided_grammar",
            "regex",
            "ebnf",
            "json_schema",
        )
    },
}
# Fields that would change a response's shape, by endpoint.
_CHAT_UNSUPPORTED: dict[str, Support] = {
    **_UNSUPPORTED,
    "logprobs": (is_absent_or(False), "log probabilities are not supported"),
}
_COMPLETION_UNSUPPORTED: dict[str, Support] = {
    **_UNSUPPORTED,
    "logprobs": (is_absent_or(), "log probabilities are not supported"),
    "echo": (is_absent_or(False), "echoing the prompt is not supported"),
    "best_of": (is_absent_or(1), "only best_of 1 is supported"),
}
# Fields that change what the model answers, so a cached answer may stand in only for a
# request that sends the same values. max_tokens and the prompt are keyed separately.
_ANSWER_FIELDS = (
    *_NUMBER_RANGES,
    "top_k",
    "min_tokens",
    "seed",
    "stop",
    "chat_template_kwargs",
    "reasoning_effort",
    "max_tokens",
    "max_completion_tokens",
    "ignore_eos",
)
# Sorted once: every request's cache key walks them.
_SORTED_ANSWER_FIELDS = tuple(sorted(_ANSWER_FIELDS))


@dataclass(frozen=True, slots=True)
class Sampling:
    # The answer-changing fields as sorted (name, canonical JSON) pairs.
    cache_key: tuple[tuple[str, str], ...]
    temperature: float | None
    stop: tuple[str, ...]
    seed: int | None


def parse_sampling(fields: Body, is_chat: bool) -> Sampling:
    """Raises LimitError naming the first field of a wrong type, out of range or asking
    for a feature that is not served (`is_chat`: of /v1/chat/completions)."""
    # Every check passes an absent field: only the ones sent are checked (most requests
    # send none), in the table's order, so the first one at fault is named as before.
    unsupported = _CHAT_UNSUPPORTED if is_chat else _COMPLETION_UNSUPPORTED
    if present := fields.keys() & unsupported.keys():
        for name, (is_supported, why) in unsupported.items():
            if name in present and not is_supported(fields[name]):
                raise LimitError(name, f"{why}, got {shown(fields[name])}")
    for name, (lowest, highest, takes_lowest) in _NUMBER_RANGES.items():
        _check_number(fields.get(name), name, lowest, highest, takes_lowest)
    top_k = fields.get("top_k")
    if top_k is not None and (type(top_k) is not int or top_k < -1):
        raise LimitError("top_k", f"must be an integer >= -1 (-1: off), got {shown(top_k)}")
    min_tokens = fields.get("min_tokens")
    if min_tokens is not None and (type(min_tokens) is not int or min_tokens < 0):
        raise LimitError("min_tokens", f"must be an integer >= 0, got {shown(min_tokens)}")
    seed = fields.get("seed")
    if seed is not None and type(seed) is not int:
        raise LimitError("seed", f"must be an integer, got {shown(seed)}")
    user = fields.get("user")
    if user is not None and not isinstance(user, str):
        raise LimitError("user", f"must be a string, got {shown(user)}")
    temperature = fields.get("temperature")
    cache_key = tuple(
        (name, orjson.dumps(fields[name], option=orjson.OPT_SORT_KEYS).decode())
        for name in _SORTED_ANSWER_FIELDS
        if fields.get(name) is not None
    )
    return Sampling(
        cache_key,
        None if temperature is None else float(temperature),  # type: ignore[arg-type]
        _stop(fields.get("stop")),
        seed,
    )


def _check_number(
    value: object, name: str, lowest: float, highest: float, takes_lowest: bool
) -> None:
    if value is None:
        return
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    in_range = is_number and (lowest <= value if takes_lowest else lowest < value)  # type: ignore[operator]
    if not in_range or value > highest:  # type: ignore[operator]
        bracket = "[" if takes_lowest else "("
        raise LimitError(
            name, f"must be a number in {bracket}{lowest:g}, {highest:g}], got {shown(value)}"
        )


def _stop(value: object) -> tuple[str, ...]:
    """OpenAI's `stop`: one string or an array of strings (their count and lengths are
    `request_limits.check_stop_sequences`'s to check)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise LimitError("stop", f"must be a string or an array of strings, got {shown(value)}")


def shown(value: object) -> str:
    """A value as a short phrase for error messages: JSON for scalars, the kind otherwise."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array" if value else "an empty array"
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # not JSON, or an integer beyond 64 bits
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

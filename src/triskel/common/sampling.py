"""The OpenAI sampling fields: types and ranges checked, unsupported features refused. Pure.

Honoured: `stop` (the router ends the answer before it), `seed` (passed on), `temperature`
(keys the semantic cache). Accepted with their types and ranges checked, as engine knobs
the mock engine does not model: `top_p`, `top_k`, `min_p`, the penalties. Refused with a
400 naming the field, as the answer could not be what they ask: tool calling (`tools`,
`tool_choice` other than "none", `functions`, `function_call`), structured output
(`response_format` other than text), `logit_bias` and `top_logprobs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from triskel.router.types import RequestError

Body = dict[str, object]

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
# name: (whether the value is supported, why not).
_UNSUPPORTED: dict[str, tuple[Callable[[object], bool], str]] = {
    "tools": (lambda v: v is None or v == [], "tool calling is not supported"),
    "tool_choice": (lambda v: v in (None, "none"), "tool calling is not supported"),
    "functions": (lambda v: v is None, "function calling is not supported"),
    "function_call": (lambda v: v in (None, "none"), "function calling is not supported"),
    "response_format": (
        lambda v: v is None or v == {"type": "text"},
        'structured output is not supported; only {"type": "text"}',
    ),
    "logit_bias": (lambda v: v is None or v == {}, "logit bias is not supported"),
    "top_logprobs": (lambda v: v is None, "log probabilities are not supported"),
}
# Fields that change what the model answers, so a cached answer may stand in only for a
# request that sends the same values. max_tokens and the prompt are keyed separately.
_ANSWER_FIELDS = (
    *_NUMBER_RANGES,
    "top_k",
    "seed",
    "stop",
    "chat_template_kwargs",
    "reasoning_effort",
    "max_tokens",
    "max_completion_tokens",
    "ignore_eos",
)


@dataclass(frozen=True, slots=True)
class Sampling:
    # The answer-changing fields as sorted (name, canonical JSON) pairs.
    cache_key: tuple[tuple[str, str], ...]
    temperature: float | None
    stop: tuple[str, ...]
    seed: int | None


def parse_sampling(fields: Body) -> Sampling:
    """Raises RequestError naming the first field of a wrong type, out of range or
    asking for a feature that is not served."""
    for name, (is_supported, why) in _UNSUPPORTED.items():
        if not is_supported(fields.get(name)):
            raise RequestError(name, f"{why}, got {shown(fields.get(name))}")
    for name, (lowest, highest, takes_lowest) in _NUMBER_RANGES.items():
        _check_number(fields.get(name), name, lowest, highest, takes_lowest)
    top_k = fields.get("top_k")
    if top_k is not None and (type(top_k) is not int or top_k < -1):
        raise RequestError("top_k", f"must be an integer >= -1 (-1: off), got {shown(top_k)}")
    seed = fields.get("seed")
    if seed is not None and type(seed) is not int:
        raise RequestError("seed", f"must be an integer, got {shown(seed)}")
    user = fields.get("user")
    if user is not None and not isinstance(user, str):
        raise RequestError("user", f"must be a string, got {shown(user)}")
    temperature = fields.get("temperature")
    cache_key = tuple(
        (name, orjson.dumps(fields[name], option=orjson.OPT_SORT_KEYS).decode())
        for name in sorted(_ANSWER_FIELDS)
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
        raise RequestError(
            name, f"must be a number in {bracket}{lowest:g}, {highest:g}], got {shown(value)}"
        )


def _stop(value: object) -> tuple[str, ...]:
    """OpenAI's `stop`: one string or an array of strings (their count and lengths are
    the shared validator's to check)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise RequestError("stop", f"must be a string or an array of strings, got {shown(value)}")


def shown(value: object) -> str:
    """A value as a short phrase for error messages: JSON for scalars, the kind otherwise."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array" if value else "an empty array"
    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."

"""Hypothesis strategies for the router's OpenAI-style HTTP API: JSON bodies for
/v1/completions and /v1/chat/completions, headers, and bytes that are not JSON at all.

A body is mostly what a client would send (the fields the API accepts, with usual
values), with up to two fields replaced by any JSON value and sometimes an unknown field,
so cases reach the checks after the first one. `json.dumps` writes what a careless client
does: integers of any size, and NaN / Infinity, which strict JSON has no spelling for.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import strategies as st

from support.fuzz_messages import INT64, MODEL, ODD_CHARACTERS, short_texts, texts

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.one_of(INT64, st.integers()),
    st.floats(),
    st.text(ODD_CHARACTERS, max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool"])
IMAGE_URLS = st.sampled_from(["https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="])


def _image_part() -> st.SearchStrategy[dict[str, Any]]:
    side = st.sampled_from([0, 28, 336, 1024])
    image = st.fixed_dictionaries(
        {"url": IMAGE_URLS}, optional={"width": side, "height": side, "detail": st.just("low")}
    )
    return st.fixed_dictionaries({"type": st.just("image_url"), "image_url": image})


def _content() -> st.SearchStrategy[Any]:
    text_part = st.fixed_dictionaries({"type": st.just("text"), "text": texts(max_size=80)})
    return st.one_of(
        st.text(ODD_CHARACTERS, min_size=1, max_size=200),
        st.lists(st.one_of(text_part, _image_part()), min_size=1, max_size=3),
    )


def _messages() -> st.SearchStrategy[list[dict[str, Any]]]:
    message = st.fixed_dictionaries({"role": ROLES, "content": _content()})
    return st.lists(message, min_size=1, max_size=3)


def _prompts() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.text(ODD_CHARACTERS, min_size=1, max_size=200),
        texts(max_size=20),
        st.lists(st.integers(0, 128_000), min_size=1, max_size=50),  # token ids
    )


def _stops() -> st.SearchStrategy[Any]:
    stop = st.text(ODD_CHARACTERS, min_size=1, max_size=8)
    return st.one_of(stop, st.lists(stop, max_size=4))


# Optional fields with the values a client would send.
SAMPLING_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "stream": st.booleans(),
    "stream_options": st.just({"include_usage": True}),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0.01, 1),
    "top_k": st.integers(-1, 50),
    "min_p": st.floats(0, 1),
    "presence_penalty": st.floats(-2, 2),
    "frequency_penalty": st.floats(-2, 2),
    "repetition_penalty": st.floats(0.5, 2),
    "stop": _stops(),
    "seed": INT64,
    "ignore_eos": st.booleans(),
    "n": st.just(1),
    "user": short_texts(),
}


@st.composite
def completion_bodies(draw: st.DrawFn, chat: bool) -> dict[str, Any]:
    """A body for /v1/chat/completions (`chat`) or /v1/completions."""
    body: dict[str, Any] = {"model": MODEL, "max_tokens": draw(st.integers(1, 40))}
    if chat:
        body["messages"] = draw(_messages())
    else:
        body["prompt"] = draw(_prompts())
    names = draw(st.sets(st.sampled_from(sorted(SAMPLING_FIELDS)), max_size=5))
    body.update({name: draw(SAMPLING_FIELDS[name]) for name in sorted(names)})
    known = sorted({*body, *SAMPLING_FIELDS, "tools", "response_format", "logprobs", "echo"})
    for name in draw(st.sets(st.sampled_from(known), max_size=2)):
        body[name] = draw(JSON_VALUES)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=10))] = draw(JSON_VALUES)
    if not chat and draw(st.booleans()):
        body.pop("max_tokens", None)  # the server's default (16)
    return body


def encoded(body: Any) -> bytes:
    """`body` as a client's JSON library writes it (NaN and Infinity included)."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def raw_bodies() -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    """Bodies that are not a JSON object, with the headers that came with them."""
    deep = st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n)
    plain = st.one_of(
        st.binary(max_size=512),
        deep,
        st.builds(lambda v: encoded(v)[:-1], JSON_VALUES),  # cut short
        st.builds(encoded, JSON_VALUES),  # JSON, rarely an object
    )
    json_type = {"content-type": "application/json"}
    return st.one_of(
        st.tuples(plain, st.just(json_type)),
        st.tuples(plain, st.just({**json_type, "content-encoding": "gzip"})),
        st.tuples(
            st.builds(lambda b: gzip.compress(encoded(b)), completion_bodies(chat=False)),
            st.just({**json_type, "content-encoding": "gzip"}),
        ),
        st.tuples(plain, st.sampled_from([{"content-type": "text/plain"}, {}])),
    )


# Header values http.client can send (no line breaks or NUL), as latin-1 bytes go.
_HEADER_TEXT = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=200
)
HEADERS = st.dictionaries(
    st.sampled_from(["x-request-id", "x-priority", "x-tenant", "x-session-id", "user-agent"]),
    _HEADER_TEXT,
    max_size=3,
)

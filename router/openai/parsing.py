"""OpenAI request bodies (already JSON-decoded) → `GenerationRequest`. Pure, no I/O.

Every rejection is a `RequestError` naming the field in the client's terms
(`messages[1].content[0].image_url.url`) and the value or limit. Fields we do not
know are ignored (documented in docs/routing.md, "Bad input"); sampling fields, and
fields that would change the response's shape (`n`, `logprobs`, `echo`, `best_of`), are
checked by `triskel.common.sampling`, which the worker's HTTP API runs as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from triskel.common.request_limits import LimitError
from triskel.common.sampling import Sampling, parse_sampling, shown
from triskel.router.request_checks import HTTP_SPELLING, check_request
from triskel.router.types import ChatMessage, GenerationRequest, ImagePart, RequestError, TextPart

# OpenAI's default for the legacy completions endpoint when max_tokens is omitted.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16
# Credentials stay at the front door: routing policies never need them.
_PRIVATE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})

Body = dict[str, object]


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    request: GenerationRequest
    stream: bool
    # stream_options.include_usage: send a usage chunk before [DONE].
    include_usage: bool


def parse_chat_request(body: object, request_id: str, headers: Mapping[str, str]) -> ParsedRequest:
    """A `POST /v1/chat/completions` body; `headers` are passed on as given."""
    fields = _object(body, "body")
    model = _model(fields)
    sampling = _sampling(fields, is_chat=True)
    completion_tokens = _positive_int(fields, "max_completion_tokens")
    max_tokens = _positive_int(fields, "max_tokens")
    if None not in (completion_tokens, max_tokens) and completion_tokens != max_tokens:
        raise RequestError(
            "max_completion_tokens",
            f"({completion_tokens}) disagrees with max_tokens ({max_tokens}); send one of them",
        )
    stream, include_usage = _stream_flags(fields)
    request = GenerationRequest(
        request_id=request_id,
        model=model,
        messages=_messages(fields.get("messages")),
        max_tokens=completion_tokens or max_tokens,
        ignore_eos=_bool(fields, "ignore_eos"),
        headers=dict(headers),
        sampling=sampling.cache_key,
        temperature=sampling.temperature,
        stop=sampling.stop,
        seed=sampling.seed,
        enable_thinking=_enable_thinking(fields),
        reasoning_effort=_reasoning_effort(fields),
    )
    check_request(request, HTTP_SPELLING)
    return ParsedRequest(request, stream, include_usage)


def parse_completion_request(
    body: object, request_id: str, headers: Mapping[str, str]
) -> ParsedRequest:
    """A `POST /v1/completions` body; `headers` are passed on as given."""
    fields = _object(body, "body")
    model = _model(fields)
    sampling = _sampling(fields, is_chat=False)
    stream, include_usage = _stream_flags(fields)
    prompt = _prompt(fields.get("prompt"))
    request = GenerationRequest(
        request_id=request_id,
        model=model,
        prompt=prompt if isinstance(prompt, str) else None,
        prompt_token_ids=None if isinstance(prompt, str) else prompt,
        max_tokens=_positive_int(fields, "max_tokens") or COMPLETIONS_DEFAULT_MAX_TOKENS,
        ignore_eos=_bool(fields, "ignore_eos"),
        headers=dict(headers),
        sampling=sampling.cache_key,
        temperature=sampling.temperature,
        stop=sampling.stop,
        seed=sampling.seed,
    )
    check_request(request, HTTP_SPELLING)
    return ParsedRequest(request, stream, include_usage)


def passed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers for routing policies: lower-case names, credentials left out."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _PRIVATE_HEADERS}


def _sampling(fields: Body, is_chat: bool) -> Sampling:
    try:
        return parse_sampling(fields, is_chat)
    except LimitError as error:
        raise RequestError(error.field_name, error.message) from None


REASONING_EFFORTS = ("low", "medium", "high")


def _enable_thinking(fields: Body) -> bool | None:
    kwargs = fields.get("chat_template_kwargs")
    if kwargs is None:
        return None
    value = _object(kwargs, "chat_template_kwargs").get("enable_thinking")
    if value is not None and not isinstance(value, bool):
        raise RequestError(
            "chat_template_kwargs.enable_thinking", f"must be true or false, got {shown(value)}"
        )
    return value


def _reasoning_effort(fields: Body) -> str | None:
    value = fields.get("reasoning_effort")
    if value is not None and value not in REASONING_EFFORTS:
        raise RequestError(
            "reasoning_effort", f"must be one of {', '.join(REASONING_EFFORTS)}, got {shown(value)}"
        )
    return None if value is None else str(value)


def _object(value: object, field: str) -> Body:
    if not isinstance(value, dict):
        raise RequestError(field, f"must be a JSON object, got {shown(value)}")
    return value


def _model(fields: Body) -> str:
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model", f"must be a non-empty string, got {shown(model)}")
    return model


def _positive_int(fields: Body, field: str) -> int | None:
    value = fields.get(field)
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise RequestError(field, f"must be an integer >= 1, got {shown(value)}")
    return value


def _bool(fields: Body, name: str, parent: str = "") -> bool:
    value = fields.get(name)
    if value is not None and not isinstance(value, bool):
        raise RequestError(parent + name, f"must be true or false, got {shown(value)}")
    return bool(value)


def _stream_flags(fields: Body) -> tuple[bool, bool]:
    stream = _bool(fields, "stream")
    options = fields.get("stream_options")
    if options is None:
        return stream, False
    if not stream:
        raise RequestError("stream_options", "is only allowed when stream is true")
    return stream, _bool(_object(options, "stream_options"), "include_usage", "stream_options.")


def _prompt(value: object) -> str | tuple[int, ...]:
    """Text or token ids. OpenAI also takes a batch of either; only a batch of one is served."""
    field = "prompt"
    if isinstance(value, list) and value and isinstance(value[0], str | list):
        if len(value) != 1:
            raise RequestError(field, f"batches are not supported, got {len(value)} prompts")
        value, field = value[0], "prompt[0]"
    if isinstance(value, list):
        return _token_ids(value, field)
    if not isinstance(value, str) or not value:
        raise RequestError(field, f"must be a non-empty string or token ids, got {shown(value)}")
    return value


def _token_ids(values: list[object], field: str) -> tuple[int, ...]:
    """Token ids as given; whether the model's vocabulary has them is the tokenize stage's call."""
    if not values:
        raise RequestError(field, "must not be an empty array")
    ids: list[int] = []
    for position, value in enumerate(values):
        # JSON's true is not a token id, though Python's bool is an int.
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RequestError(
                f"{field}[{position}]", f"a token id must be an integer >= 0, got {shown(value)}"
            )
        ids.append(value)
    return tuple(ids)


def _messages(value: object) -> tuple[ChatMessage, ...]:
    if not isinstance(value, list) or not value:
        raise RequestError("messages", f"must be a non-empty array, got {shown(value)}")
    return tuple(_message(item, f"messages[{i}]") for i, item in enumerate(value))


def _message(value: object, field: str) -> ChatMessage:
    fields = _object(value, field)
    role = fields.get("role")
    if not isinstance(role, str):  # which roles exist is the shared validator's call
        raise RequestError(f"{field}.role", f"must be a string, got {shown(role)}")
    content = fields.get("content")
    if isinstance(content, str):
        return ChatMessage(str(role), (TextPart(content),))
    if not isinstance(content, list) or not content:
        raise RequestError(
            f"{field}.content",
            f"must be a string or a non-empty array of parts, got {shown(content)}",
        )
    parts = tuple(_part(part, f"{field}.content[{i}]") for i, part in enumerate(content))
    return ChatMessage(str(role), parts)


def _part(value: object, field: str) -> TextPart | ImagePart:
    fields = _object(value, field)
    kind = fields.get("type")
    if kind == "text":
        text = fields.get("text")
        if not isinstance(text, str):
            raise RequestError(f"{field}.text", f"must be a string, got {shown(text)}")
        return TextPart(text)
    if kind == "image_url":
        image = _object(fields.get("image_url"), f"{field}.image_url")
        url = image.get("url")
        if not isinstance(url, str) or not url:
            raise RequestError(
                f"{field}.image_url.url", f"must be a non-empty string, got {shown(url)}"
            )
        return ImagePart(
            url,
            width_px=_image_side_px(image, f"{field}.image_url", "width"),
            height_px=_image_side_px(image, f"{field}.image_url", "height"),
        )
    raise RequestError(
        f"{field}.type", f'must be "text" or "image_url", got {shown(kind)} (not supported)'
    )


def _image_side_px(image: Body, field: str, side: str) -> int:
    """Our `width` / `height` extension; 0 (absent) lets the encoder use its default size."""
    value = image.get(side)
    if value is None:
        return 0
    # The upper bound is the shared validator's (request_checks), as for gRPC.
    if type(value) is not int or value < 1:
        raise RequestError(f"{field}.{side}", f"must be an integer >= 1, got {shown(value)}")
    return value

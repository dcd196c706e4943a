"""Request bodies of the worker's HTTP API (already JSON-decoded) → typed requests. Pure.

Sampling fields are checked by `triskel.common.sampling`, the router's own check:
`stop` and `seed` are honoured, engine knobs the mock does not model (`top_p`,
`min_tokens`...) checked by type and range, and features it cannot serve (tools,
structured output, `n`, `logprobs`...) a 400 naming the field, never silently dropped.
Other unknown fields are ignored, as vLLM does: routers add engine options that do not
change the answer (smg sends `no_stop_trim`, `skip_special_tokens`,
`separate_reasoning`; docs/workers-vllm-api.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.chat_prompt import ChatTurn
from triskel.common.request_limits import LimitError, check_seed, check_stop_sequences
from triskel.common.sampling import Sampling, parse_sampling
from triskel.workers.kv.control import format_address
from triskel.workers.openai_http.errors import Json, bad_request
from triskel.workers.openai_http.fields import (
    json_object,
    optional_bool,
    optional_positive_int,
    shown,
    token_ids,
)

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
_MAX_PORT = 65535
_MAX_ROOM = 2**64 - 1


@dataclass(frozen=True, slots=True)
class BootstrapParams:
    """SGLang P/D: where the prefill worker publishes the prompt's KV, and under which room."""

    host: str
    port: int
    room: int

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)


@dataclass(frozen=True, slots=True)
class PromptInput:
    """Exactly one of text, token ids or chat messages."""

    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    messages: tuple[ChatTurn, ...] | None = None

    @property
    def field_name(self) -> str:
        return "messages" if self.messages is not None else "prompt"


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """A `/v1/completions` or `/v1/chat/completions` body."""

    is_chat: bool
    prompt: PromptInput
    model: str | None = None
    # None: the endpoint's default (vLLM: 16 for completions, the rest of the context for chat).
    max_tokens: int | None = None
    ignore_eos: bool = False
    stream: bool = False
    include_usage: bool = False
    # vLLM >= 0.10.2: each choice also carries its "token_ids" (routers count tokens with it).
    return_token_ids: bool = False
    kv_transfer_params: Json | None = None
    bootstrap: BootstrapParams | None = None
    # The answer ends before the first of these (not shown), finish_reason "stop".
    stop: tuple[str, ...] = ()
    # The client's sampling seed; None: the prompt's own.
    seed: int | None = None


def parse_generate_request(body: object, is_chat: bool) -> GenerateRequest:
    """Raises ApiError (400) naming the first bad field."""
    fields = json_object(body, "body")
    sampling = _sampling(fields, is_chat)
    stream = optional_bool(fields, "stream")
    options = fields.get("stream_options")
    if options is not None and not stream:
        raise bad_request("stream_options", "is only allowed when stream is true")
    include_usage = options is not None and optional_bool(
        json_object(options, "stream_options"), "include_usage", "stream_options."
    )
    # vLLM: max_completion_tokens (OpenAI's newer name) wins over max_tokens.
    completion_tokens = optional_positive_int(fields, "max_completion_tokens")
    kv_transfer_params = fields.get("kv_transfer_params")
    if kv_transfer_params is not None:
        kv_transfer_params = json_object(kv_transfer_params, "kv_transfer_params")
    return GenerateRequest(
        is_chat=is_chat,
        prompt=_chat_prompt(fields) if is_chat else _text_prompt(fields),
        model=_model(fields),
        max_tokens=completion_tokens or optional_positive_int(fields, "max_tokens"),
        ignore_eos=optional_bool(fields, "ignore_eos"),
        stream=stream,
        include_usage=include_usage,
        return_token_ids=optional_bool(fields, "return_token_ids"),
        kv_transfer_params=kv_transfer_params,
        bootstrap=_bootstrap(fields),
        stop=sampling.stop,
        seed=sampling.seed,
    )


def parse_prompt_input(body: object, is_chat: bool | None = None) -> PromptInput:
    """The render endpoints' prompt: chat `messages` (`is_chat`), a `prompt` (not
    `is_chat`), or whichever the body has (None, as `/tokenize` takes either)."""
    fields = json_object(body, "body")
    if is_chat is None:
        is_chat = fields.get("messages") is not None
    return _chat_prompt(fields) if is_chat else _text_prompt(fields)


def parse_tokenize_request(body: object) -> tuple[PromptInput, bool]:
    """`/tokenize`: the prompt, and whether to open the assistant's turn after messages."""
    prompt = parse_prompt_input(body)
    add_generation_prompt = json_object(body, "body").get("add_generation_prompt")
    if add_generation_prompt is not None and not isinstance(add_generation_prompt, bool):
        raise bad_request(
            "add_generation_prompt", f"must be true or false, got {shown(add_generation_prompt)}"
        )
    return prompt, add_generation_prompt is not False


def parse_token_ids(body: object, field: str) -> tuple[int, ...]:
    """`/detokenize`: the token ids of `field`."""
    value = json_object(body, "body").get(field)
    if not isinstance(value, list):
        raise bad_request(field, f"must be an array of token ids, got {shown(value)}")
    return token_ids(value, field)


def _sampling(fields: Json, is_chat: bool) -> Sampling:
    """The router's checks of the sampling fields, and of the limits on stop and seed."""
    try:
        sampling = parse_sampling(fields, is_chat)
        check_stop_sequences(sampling.stop)
        check_seed(sampling.seed)
    except LimitError as error:
        raise bad_request(error.field_name, error.message) from None
    return sampling


def _model(fields: Json) -> str | None:
    model = fields.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise bad_request("model", f"must be a non-empty string, got {shown(model)}")
    return model


def _text_prompt(fields: Json) -> PromptInput:
    """Text or token ids; OpenAI also takes a batch of either, and a batch of one is served."""
    value, field = fields.get("prompt"), "prompt"
    if isinstance(value, list) and value and isinstance(value[0], str | list):
        if len(value) != 1:
            raise bad_request(field, f"batches are not supported, got {len(value)} prompts")
        value, field = value[0], "prompt[0]"
    if isinstance(value, list):
        return PromptInput(token_ids=token_ids(value, field))
    if not isinstance(value, str) or not value:
        raise bad_request(field, f"must be a non-empty string or token ids, got {shown(value)}")
    return PromptInput(text=value)


def _chat_prompt(fields: Json) -> PromptInput:
    value = fields.get("messages")
    if not isinstance(value, list) or not value:
        raise bad_request("messages", f"must be a non-empty array, got {shown(value)}")
    return PromptInput(messages=tuple(_message(m, f"messages[{i}]") for i, m in enumerate(value)))


def _message(value: object, field: str) -> ChatTurn:
    fields = json_object(value, field)
    role = fields.get("role")
    if role not in CHAT_ROLES:
        raise bad_request(f"{field}.role", f"must be one of {CHAT_ROLES}, got {shown(role)}")
    content = fields.get("content")
    if content is None:  # an assistant turn that only called tools
        return str(role), ()
    if isinstance(content, str):
        return str(role), (content,)
    if not isinstance(content, list):
        raise bad_request(
            f"{field}.content", f"must be a string or an array of parts, got {shown(content)}"
        )
    return str(role), tuple(_text_part(p, f"{field}.content[{i}]") for i, p in enumerate(content))


def _text_part(value: object, field: str) -> str:
    part = json_object(value, field)
    if part.get("type") != "text":
        raise bad_request(
            f"{field}.type",
            f'only "text" parts are served by the mock worker, got {shown(part.get("type"))}',
        )
    text = part.get("text")
    if not isinstance(text, str):
        raise bad_request(f"{field}.text", f"must be a string, got {shown(text)}")
    return text


def _bootstrap(fields: Json) -> BootstrapParams | None:
    """SGLang's P/D fields; a request without `bootstrap_room` is not disaggregated."""
    room = fields.get("bootstrap_room")
    if room is None:
        return None
    if type(room) is not int or not 0 <= room <= _MAX_ROOM:
        raise bad_request("bootstrap_room", f"must be an integer in [0, 2^64), got {shown(room)}")
    host = fields.get("bootstrap_host")
    if not isinstance(host, str) or not host:
        raise bad_request("bootstrap_host", f"must be a non-empty string, got {shown(host)}")
    port = fields.get("bootstrap_port")
    if type(port) is not int or not 1 <= port <= _MAX_PORT:
        raise bad_request(
            "bootstrap_port",
            f"must be the prefill worker's bootstrap port (1..{_MAX_PORT}), got {shown(port)}; "
            "give the router the prefill worker's bootstrap port",
        )
    return BootstrapParams(host, port, room)

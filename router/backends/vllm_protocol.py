"""vLLM's OpenAI-compatible API as the router speaks it: bodies out, events in. Pure.

The router sends token ids (it tokenized already) to `/v1/completions`. P/D follows
vLLM's own proxy (the NIXL connector's `kv_transfer_params`):

    prefill: max_tokens 1, stream off, kv_transfer_params {do_remote_decode: true}
             ◄── the response's top-level kv_transfer_params (where the KV is)
    decode:  the request with those params, streamed; the decode worker pulls the KV,
             samples the first token itself and streams every token

`return_token_ids` asks for token ids beside the text (vLLM ≥ 0.10.2; mock workers);
without them each chunk's text is counted as one token, as vLLM streams one per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triskel.router.types import TokenEvent
from triskel.router.worker_client import (
    CallFailure,
    DecodeCall,
    DecodeFinished,
    KvTicket,
    PrefillCall,
    PrefillReply,
    WorkerCallError,
)

BACKEND = "vllm"
Json = dict[str, Any]

# What vLLM's proxy sends a prefill worker: "export the KV for a remote decode".
_EXPORT_KV: Json = {
    "do_remote_decode": True,
    "do_remote_prefill": False,
    "remote_engine_id": None,
    "remote_block_ids": None,
    "remote_host": None,
    "remote_port": None,
}


def prefill_body(call: PrefillCall, model: str) -> Json:
    return {
        "model": model,
        "prompt": list(call.token_ids),
        "max_tokens": 1,
        "stream": False,
        "return_token_ids": True,
        "kv_transfer_params": dict(_EXPORT_KV),
        **_seed(call.seed),
    }


def decode_body(call: DecodeCall, model: str) -> Json:
    body: Json = {
        "model": model,
        "prompt": list(call.token_ids),
        "max_tokens": call.max_tokens,
        "ignore_eos": call.ignore_eos,
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,
        **_seed(call.seed),
    }
    if call.kv is not None:
        body["kv_transfer_params"] = _params_of(call.kv)
    return body


def _seed(seed: int | None) -> Json:
    """vLLM's `seed` field, only when the client set one (vLLM's default is unseeded)."""
    return {} if seed is None else {"seed": seed}


def prefill_reply(payload: object, call: PrefillCall, connector: str) -> PrefillReply:
    """The prefill worker's JSON answer as a PrefillReply; WorkerCallError if malformed."""
    body = _object(payload, "response")
    choice = _first_choice(body)
    text = choice.get("text")
    if not isinstance(text, str):
        raise _malformed("choices[0].text is not a string")
    params = body.get("kv_transfer_params")
    # max_tokens 1 always ends a prefill with "length"; only the client's own limit
    # (or a missing KV, e.g. after EOS) makes it the whole answer.
    is_whole = call.max_tokens <= 1 or params is None
    finish_reason = choice.get("finish_reason") or "stop"
    kv = None if is_whole else KvTicket(BACKEND, connector, _object(params, "kv_transfer_params"))
    return PrefillReply(
        first_token=TokenEvent(text, _token_ids(choice, text)),
        num_cached_tokens=_cached_tokens(body),
        finish_reason=str(finish_reason) if is_whole else None,
        kv=kv,
        decode_repeats_first_token=True,
    )


@dataclass(slots=True)
class DecodeStreamState:
    """Reads one streamed completion's chunks; `finished` once the usage or [DONE] came."""

    finish_reason: str | None = None
    num_generated_tokens: int = 0
    num_cached_tokens: int = 0
    has_usage: bool = False
    is_done: bool = False

    def on_data(self, data: str, parsed: object) -> TokenEvent | None:
        """One SSE event's data (`parsed` = its JSON, None for [DONE]); the tokens in it."""
        if data == "[DONE]":
            self.is_done = True
            return None
        body = _object(parsed, "stream chunk")
        if "error" in body:
            raise WorkerCallError(CallFailure.UNAVAILABLE, _error_message(body))
        usage = body.get("usage")
        if isinstance(usage, Mapping):
            self.has_usage = True
            self.num_generated_tokens = int(usage.get("completion_tokens") or 0)
            self.num_cached_tokens = _cached_tokens(body)
        choices = body.get("choices") or []
        if not choices:
            return None
        choice = _object(choices[0], "choices[0]")
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        text = choice.get("text") or ""
        token_ids = _token_ids(choice, text)
        if not self.has_usage:  # the usage chunk, when sent, has the exact count
            self.num_generated_tokens += len(token_ids)
        return TokenEvent(str(text), token_ids) if token_ids else None

    def finished(self) -> DecodeFinished:
        if self.finish_reason is None:
            raise WorkerCallError(CallFailure.UNAVAILABLE, "decode ended without finishing")
        return DecodeFinished(self.finish_reason, self.num_generated_tokens, self.num_cached_tokens)


def error_of(status: int, payload: object, where: str) -> WorkerCallError:
    """An HTTP error answer as the router's failure kind."""
    message = _error_message(payload) if isinstance(payload, Mapping) else str(payload)
    details = f"HTTP {status} from {where}: {message}"
    if status in (408, 504):
        return WorkerCallError(CallFailure.TIMEOUT, details)
    # 410: the KV the params name is gone; another worker may still serve the request.
    if status in (400, 404, 413, 422) or (400 <= status < 500 and status not in (410, 429)):
        field_name = _error_field(payload)
        return WorkerCallError(CallFailure.INVALID_ARGUMENT, message, field_name or "request")
    return WorkerCallError(CallFailure.UNAVAILABLE, details)


def _params_of(ticket: KvTicket) -> Json:
    if ticket.backend != BACKEND or not isinstance(ticket.payload, Mapping):
        raise WorkerCallError(
            CallFailure.INVALID_ARGUMENT,
            f"a {ticket.backend} prefill's KV cannot be decoded by a vLLM-API worker",
            "kv",
        )
    return dict(ticket.payload)


def _first_choice(body: Mapping[str, Any]) -> Json:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _malformed("no choices")
    return _object(choices[0], "choices[0]")


def _token_ids(choice: Mapping[str, Any], text: str) -> tuple[int, ...]:
    token_ids = choice.get("token_ids")
    if isinstance(token_ids, list) and all(isinstance(t, int) for t in token_ids):
        return tuple(token_ids)
    # vLLM streams one token per chunk; without ids, count the chunk as one.
    return (-1,) if text else ()


def _cached_tokens(body: Mapping[str, Any]) -> int:
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        return 0
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, Mapping):
        return 0
    cached = details.get("cached_tokens")
    return cached if isinstance(cached, int) else 0


def _object(value: object, what: str) -> Json:
    if not isinstance(value, dict):
        raise _malformed(f"{what} is not a JSON object")
    return value


def _error_message(payload: Mapping[str, Any]) -> str:
    error = payload.get("error", payload)
    if isinstance(error, Mapping):
        return str(error.get("message") or error)
    return str(error)


def _error_field(payload: object) -> str:
    if not isinstance(payload, Mapping):
        return ""
    error = payload.get("error", payload)
    param = error.get("param") if isinstance(error, Mapping) else None
    return param if isinstance(param, str) else ""


def _malformed(problem: str) -> WorkerCallError:
    return WorkerCallError(CallFailure.UNAVAILABLE, f"malformed vLLM answer: {problem}")

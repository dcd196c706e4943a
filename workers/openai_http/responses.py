"""Response bodies of the worker's HTTP API, whole and streamed, as vLLM shapes them. Pure.

    chat, whole:    {"object": "chat.completion", "choices": [{"message": ...}], "usage",
                     "kv_transfer_params"}
    chat, stream:   role delta → content deltas → finish chunk → [usage chunk] → [DONE]
    text, whole:    {"object": "text_completion", "choices": [{"text": ...}], "usage",
                     "kv_transfer_params"}
    text, stream:   text deltas → finish chunk → [usage chunk] → [DONE]

`kv_transfer_params` is vLLM's P/D field: null except on a prefill worker's answer to a
`do_remote_decode` request (in a stream, on the finish chunk).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from triskel.workers.openai_http.errors import Json

SSE_DONE = b"data: [DONE]\n\n"


def sse_events(payloads: Iterable[Json]) -> bytes:
    """Server-sent events, one per payload, each carrying it as JSON."""
    return b"".join(b"data: " + orjson.dumps(payload) + b"\n\n" for payload in payloads)


@dataclass(frozen=True, slots=True)
class Usage:
    num_prompt_tokens: int
    num_completion_tokens: int
    num_cached_tokens: int

    def json(self) -> Json:
        return {
            "prompt_tokens": self.num_prompt_tokens,
            "completion_tokens": self.num_completion_tokens,
            "total_tokens": self.num_prompt_tokens + self.num_completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.num_cached_tokens},
        }


@dataclass(frozen=True, slots=True)
class CompletionShape:
    """Builds every body of one response, chat (`is_chat`) or text completion."""

    is_chat: bool
    request_id: str
    model: str
    created_s: int
    # stream_options.include_usage: every chunk carries "usage": null, a last one the counts.
    include_usage: bool = False
    # return_token_ids: choices carry "token_ids" beside the text.
    return_token_ids: bool = False

    def whole(
        self,
        text: str,
        finish_reason: str,
        usage: Usage,
        kv_transfer_params: Json | None,
        token_ids: tuple[int, ...] = (),
    ) -> Json:
        choice: Json = {"index": 0}
        if self.is_chat:
            choice["message"] = {"role": "assistant", "content": text, "tool_calls": []}
        else:
            choice["text"] = text
        choice |= {"logprobs": None, "finish_reason": finish_reason, "stop_reason": None}
        if self.return_token_ids:
            choice["token_ids"] = list(token_ids)
        return {
            **self._header(self._object()),
            "choices": [choice],
            "usage": usage.json(),
            "kv_transfer_params": kv_transfer_params,
        }

    def opening_chunks(self) -> list[Json]:
        """Chat opens with the assistant's role; text completions have no opening."""
        if not self.is_chat:
            return []
        return [self._chunk(self._choice({"role": "assistant", "content": ""}, None))]

    def text_chunk(self, text: str, token_ids: tuple[int, ...] = ()) -> Json:
        choice = self._choice({"content": text} if self.is_chat else text, None)
        if self.return_token_ids:
            choice["token_ids"] = list(token_ids)
        return self._chunk(choice)

    def closing_chunks(
        self, finish_reason: str, usage: Usage, kv_transfer_params: Json | None
    ) -> list[Json]:
        """The finish reason (with a prefill's kv_transfer_params), then usage if asked for."""
        finish = self._chunk(self._choice({} if self.is_chat else "", finish_reason))
        if kv_transfer_params is not None:
            finish["kv_transfer_params"] = kv_transfer_params
        chunks = [finish]
        if self.include_usage:
            usage_chunk = {**self._header(self._chunk_object()), "choices": []}
            chunks.append(usage_chunk | {"usage": usage.json()})
        return chunks

    def _choice(self, delta: Json | str, finish_reason: str | None) -> Json:
        body: Json = {"index": 0, ("delta" if self.is_chat else "text"): delta}
        return body | {"logprobs": None, "finish_reason": finish_reason}

    def _chunk(self, choice: Json) -> Json:
        chunk = {**self._header(self._chunk_object()), "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _header(self, object_name: str) -> Json:
        prefix = "chatcmpl" if self.is_chat else "cmpl"
        return {
            "id": f"{prefix}-{self.request_id}",
            "object": object_name,
            "created": self.created_s,
            "model": self.model,
        }

    def _object(self) -> str:
        return "chat.completion" if self.is_chat else "text_completion"

    def _chunk_object(self) -> str:
        return "chat.completion.chunk" if self.is_chat else "text_completion"


def models_json(model: str, max_context_tokens: int, created_s: int) -> Json:
    """`GET /v1/models`: the one model this worker serves (`max_model_len` is vLLM's)."""
    card = {
        "id": model,
        "object": "model",
        "created": created_s,
        "owned_by": "triskel",
        "root": model,
        "parent": None,
        "max_model_len": max_context_tokens,
        "permission": [],
    }
    return {"object": "list", "data": [card]}

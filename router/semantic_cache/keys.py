"""Cache keys: which cached answers may stand in for a request. Pure, no I/O.

A request splits into what must match exactly and what may match by meaning:

    partition     (category, tenant, model, params_hash)   exact: who asks what model how
    context_hash  every message but the last user message,   exact: the conversation so far
                  and a document pasted into it (document.py)
    query_text    the rest of the last user message          by meaning: what gets embedded
                  (head and tail)
    exact_hash    partition + context + the full last message, whitespace-normalised

`params_hash` covers the endpoint kind and every answer-changing parameter the front
kept (sampling pairs, max_tokens, the reasoning switch), so an answer is only
replayed for a request that asked for it the same way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import orjson
import xxhash

from triskel.common.semantic_api import DEFAULT_MAX_CLASSIFY_CHARS, CacheCategory
from triskel.router.semantic.request_text import bounded
from triskel.router.semantic_cache.document import split_document
from triskel.router.types import ChatMessage, GenerationRequest, ImagePart, TextPart

EndpointKind = Literal["chat", "completion"]

_WHITESPACE_RUN = re.compile(r"\s+")
# Stands for the last user message's text in the context (its images stay in).
_QUERY_SLOT = "\x00query"
# Stands before a document pasted into the last user message (matched exactly).
_DOCUMENT_SLOT = "\x00document"


@dataclass(frozen=True, slots=True)
class Partition:
    """Entries in different partitions never answer each other (one vector index each)."""

    category: str
    tenant: str
    model: str
    params_hash: str

    def to_json(self) -> list[str]:
        return [self.category, self.tenant, self.model, self.params_hash]

    @classmethod
    def from_json(cls, parts: list[str]) -> Partition:
        category, tenant, model, params_hash = parts
        return cls(category, tenant, model, params_hash)


@dataclass(frozen=True, slots=True)
class CacheKey:
    partition: Partition
    context_hash: str
    exact_hash: str
    # What gets embedded; None when the request can only match exactly (token ids, or
    # no text in the last user message).
    query_text: str | None

    @property
    def is_semantic(self) -> bool:
        return self.query_text is not None


def cache_key(
    request: GenerationRequest,
    *,
    category: str,
    tenant: str,
    model: str,
    endpoint: EndpointKind,
    max_query_chars: int = DEFAULT_MAX_CLASSIFY_CHARS,
) -> CacheKey:
    """The request's key. `model` is the model that answers (after semantic routing).

    A last message longer than `max_query_chars` puts its full text in the context
    hash: the embedding only sees its head and tail, so what it cannot see (the middle
    of a pasted document) must be identical for a neighbour to answer.
    """
    partition = Partition(category, tenant, model, _params_hash(request, endpoint))
    if request.prompt_token_ids is not None:
        context_hash = _hash([])
        exact_hash = _hash([partition.to_json(), context_hash, list(request.prompt_token_ids)])
        return CacheKey(partition, context_hash, exact_hash, query_text=None)
    if request.messages is not None:
        query_index = _last_user_index(request.messages)
        context: list[object] = _context(request.messages, query_index)
        raw = _text(request.messages[query_index]) if query_index >= 0 else ""
    else:
        context = []
        raw = request.prompt or ""
    text = normalize_text(raw)
    exact_context_hash = _hash(context)
    exact_hash = _hash([partition.to_json(), exact_context_hash, text])
    split = split_document(raw)
    query = text
    if split.document is not None:
        context.append([_DOCUMENT_SLOT, normalize_text(split.document)])
        query = normalize_text(split.instruction)
    if len(query) > max_query_chars:
        context.append(query)
    query_text = bounded(query, max_query_chars) if query else None
    return CacheKey(partition, _hash(context), exact_hash, query_text)


def is_replayable(request: GenerationRequest, category: CacheCategory) -> bool:
    """Whether a cached answer may stand in for this request's own.

    Only a greedy answer (temperature 0) is what the model would say again. OpenAI's
    API defaults temperature to 1.0, so a request that does not send one is sampled
    and not replayable, unless its category opts in with `replaySampled`.
    """
    return request.temperature == 0 or category.replay_sampled


def normalize_text(text: str) -> str:
    """Unicode NFC, surrounding whitespace stripped, inner whitespace runs as one space."""
    return _WHITESPACE_RUN.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _params_hash(request: GenerationRequest, endpoint: EndpointKind) -> str:
    # The sampling pairs are canonical JSON already; the other fields may be set or
    # changed by the router itself (semantic decisions), so they count on their own.
    return _hash(
        [
            endpoint,
            [list(pair) for pair in request.sampling],
            request.max_tokens,
            request.ignore_eos,
            request.enable_thinking,
            request.reasoning_effort,
        ]
    )


def _last_user_index(messages: tuple[ChatMessage, ...]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return len(messages) - 1  # no user message: the last one asks


def _context(messages: tuple[ChatMessage, ...], query_index: int) -> list[object]:
    context: list[object] = []
    for index, message in enumerate(messages):
        parts = [_part_json(p) for p in message.parts]
        if index == query_index:
            context.append([_QUERY_SLOT, [p for p in parts if p[0] == "image"]])
        else:
            context.append([message.role, parts])
    return context


def _part_json(part: TextPart | ImagePart) -> list[str]:
    if isinstance(part, TextPart):
        return ["text", part.text]
    return ["image", part.url]


def _text(message: ChatMessage) -> str:
    return " ".join(p.text for p in message.parts if isinstance(p, TextPart))


def _hash(value: object) -> str:
    return xxhash.xxh3_128_hexdigest(orjson.dumps(value))

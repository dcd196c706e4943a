"""A deterministic mock tokenizer with BPE-like counts (about 4 characters a token).

Real tokenizers need model files; tests and the CPU mock need only two things:
the same text always gives the same ids, and token counts close to a real BPE
tokenizer's so context limits and latencies are realistic. Text is split into
words, spaces and punctuation; a word (with its leading space) becomes pieces of
at most 4 characters. A piece found in the fixed vocabulary keeps its id; any
other piece is hashed into the id range above it.

Generated text only uses the fixed vocabulary, so `decode` is exact for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import xxhash

# Readable words for generated text; each id decodes to " word".
_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "one",
    "all",
    "we",
    "their",
    "has",
    "been",
    "would",
    "will",
    "more",
    "when",
    "if",
    "no",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "can",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "kernel",
    "cache",
    "token",
    "block",
    "prefill",
    "decode",
    "router",
    "worker",
    "batch",
    "model",
    "serve",
    "stream",
    "latency",
    "memory",
    "graph",
    "signal",
    "policy",
    "request",
    "queue",
    "tensor",
    "layer",
    "head",
    "vector",
    "index",
    "value",
    "river",
    "stone",
    "light",
    "garden",
    "window",
    "music",
    "paper",
    "silver",
    "forest",
    "ocean",
    "cloud",
    "bridge",
    "market",
]
_PUNCT = [".", ",", "!", "?", ":", ";", "-", "'", '"', "(", ")", "\n"]
_PIECE_CHARS = 4
_SPLIT = re.compile(r" ?[A-Za-z0-9]+| ?[^\sA-Za-z0-9]|\s+")
_FIXED = tuple([f" {w}" for w in _WORDS] + _PUNCT)
_FIXED_IDS = {piece: index for index, piece in enumerate(_FIXED)}
# The most characters one token stands for: a fixed-vocabulary word (" between") or a piece.
_MAX_CHARS_PER_TOKEN = max(_PIECE_CHARS, *(len(piece) for piece in _FIXED))
# Texts up to this long are split in one call (the request path's usual prompts).
_EAGER_SPLIT_CHARS = 16_384


@dataclass(frozen=True, slots=True)
class MockTokenizer:
    """Text ↔ token ids. `vocab_size` bounds every id (like a real model's)."""

    vocab_size: int = 128_256

    @property
    def num_word_tokens(self) -> int:
        """Ids below this decode to a readable word (generation draws from them)."""
        return len(_WORDS)

    def max_prompt_chars(self, num_tokens: int) -> int:
        """The longest text that can encode to `num_tokens` tokens or fewer: a longer one
        cannot fit, so it is refused by its length before the CPU cost of encoding it."""
        return num_tokens * _MAX_CHARS_PER_TOKEN

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        vocab_size = self.vocab_size
        # A long text (encoded in a thread, off the event loop) is split lazily: findall
        # over a megabyte is one C call that holds the GIL throughout, stalling the loop.
        chunks: Iterable[str] = (
            _SPLIT.findall(text)
            if len(text) <= _EAGER_SPLIT_CHARS
            else (match.group() for match in _SPLIT.finditer(text))
        )
        for chunk in chunks:
            ids += _chunk_ids(chunk, vocab_size)
        return ids

    def decode(self, token_ids: Iterable[int]) -> str:
        return "".join(
            _FIXED[t] if 0 <= t < len(_FIXED) else "\N{REPLACEMENT CHARACTER}" for t in token_ids
        )


# Prompts repeat their words, and a real tokenizer (a Rust BPE) costs a fraction of this
# pure-Python split per token: a bounded memo of chunks keeps the mock's per-request
# cost near a real one's, so it does not dominate the router's own (docs/benchmarks.md).
@functools.lru_cache(maxsize=1 << 16)
def _chunk_ids(chunk: str, vocab_size: int) -> tuple[int, ...]:
    known = _FIXED_IDS.get(chunk)
    if known is not None:
        return (known,)
    base = len(_FIXED)
    span = vocab_size - base
    return tuple(
        base + xxhash.xxh32_intdigest(chunk[i : i + _PIECE_CHARS].encode()) % span
        for i in range(0, len(chunk), _PIECE_CHARS)
    )


def count_tokens(text: str, tokenizer: MockTokenizer | None = None) -> int:
    """Number of tokens `text` encodes to."""
    return len((tokenizer or MockTokenizer()).encode(text))


# The mock chat template: each message is `<|role|>\n` + content + `\n`, and the
# prompt ends by opening the assistant's turn.
def chat_turn_start(role: str) -> str:
    return f"<|{role}|>\n"


CHAT_TURN_END = "\n"
CHAT_GENERATION_PROMPT = chat_turn_start("assistant")


def render_chat(messages: Sequence[tuple[str, str]]) -> str:
    """The prompt text for chat messages (role, text) under the mock chat template."""
    turns = [chat_turn_start(role) + text + CHAT_TURN_END for role, text in messages]
    return "".join(turns) + CHAT_GENERATION_PROMPT

"""Chat messages → prompt token ids under the mock chat template, the one way every
component computes them (router, mock workers' HTTP API), so a prefix hashes the same
wherever it is hashed.

Each piece is tokenized on its own and the ids are joined: the turn marker, every text
part of the message, the turn end, and finally the generation prompt:

    <|user|>\\n │ Hello there │ \\n │ <|assistant|>\\n
    ─ marker ──   ─ part ────   end   ─ generation prompt ─

For text that neither starts nor ends with whitespace this equals
`tokenizer.encode(render_chat(messages))`; otherwise the pieces keep their own
whitespace tokens, exactly as Triskel's router tokenizes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from triskel.common.tokenizer import (
    CHAT_GENERATION_PROMPT,
    CHAT_TURN_END,
    MockTokenizer,
    chat_turn_start,
)

# One chat message: its role and the text of each of its content parts, in order.
ChatTurn = tuple[str, Sequence[str]]


def chat_prompt_token_ids(
    messages: Sequence[ChatTurn],
    tokenizer: MockTokenizer,
    add_generation_prompt: bool = True,
) -> list[int]:
    """The prompt's token ids; `add_generation_prompt` opens the assistant's turn."""
    token_ids: list[int] = []
    for role, parts in messages:
        token_ids.extend(tokenizer.encode(chat_turn_start(role)))
        for text in parts:
            token_ids.extend(tokenizer.encode(text))
        token_ids.extend(tokenizer.encode(CHAT_TURN_END))
    if add_generation_prompt:
        token_ids.extend(tokenizer.encode(CHAT_GENERATION_PROMPT))
    return token_ids

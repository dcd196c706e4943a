"""A request as signals read it: bounded texts, a token estimate, images and headers.

Bounding happens here, before any signal runs: a long message is read as its head
and its tail (an instruction is usually at one end of a pasted document), so a
megabyte prompt costs the signals what a two-kilobyte one does. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from triskel.router.semantic.signals.base import SignalInput, Vector
from triskel.router.types import ChatMessage, GenerationRequest, TextPart

# The mock tokenizer (and BPE tokenizers on English) average about 4 characters a token;
# counting exactly would mean tokenizing the whole prompt before routing it.
CHARS_PER_TOKEN = 4
# Share of the bound given to the head of a long text (the rest goes to its tail).
_HEAD_SHARE = 0.75


def signal_input(
    request: GenerationRequest, max_chars: int, embed: Callable[[str], Vector] | None
) -> SignalInput:
    if request.messages is not None:
        last_user = _last_user_text(request.messages)
        conversation_chars = sum(_chars(m) for m in request.messages)
        conversation = _conversation(request.messages, max_chars)
        num_images = sum(1 for m in request.messages for p in m.parts if not _is_text(p))
        prompt_tokens = -(-conversation_chars // CHARS_PER_TOKEN)
    elif request.prompt is not None:
        last_user = conversation = request.prompt
        num_images = 0
        prompt_tokens = -(-len(request.prompt) // CHARS_PER_TOKEN)
    else:  # token ids: nothing to read but their count
        last_user = conversation = ""
        num_images = 0
        prompt_tokens = len(request.prompt_token_ids or ())
    return SignalInput(
        text=bounded(last_user, max_chars),
        conversation_text=bounded(conversation, max_chars),
        prompt_tokens=prompt_tokens,
        num_images=num_images,
        headers=request.headers,
        embed=embed,
    )


def bounded(text: str, max_chars: int) -> str:
    """`text`, or its head and tail joined by a newline when longer than `max_chars`."""
    if len(text) <= max_chars:
        return text
    head = int(max_chars * _HEAD_SHARE)
    tail = max_chars - head - 1
    return text[:head] + "\n" + (text[-tail:] if tail > 0 else "")


def _last_user_text(messages: tuple[ChatMessage, ...]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return _text(message)
    return _text(messages[-1]) if messages else ""


def _conversation(messages: tuple[ChatMessage, ...], max_chars: int) -> str:
    # Each message is bounded on its own first, so one pasted document cannot push every
    # other message (the system prompt included) out of the text.
    pieces = [f"{m.role}: {bounded(_text(m), max_chars)}" for m in messages]
    return "\n".join(pieces)


def _text(message: ChatMessage) -> str:
    return " ".join(p.text for p in message.parts if isinstance(p, TextPart))


def _chars(message: ChatMessage) -> int:
    return sum(len(p.text) for p in message.parts if isinstance(p, TextPart))


def _is_text(part: object) -> bool:
    return isinstance(part, TextPart)

"""What a request charges to its tokens-per-minute bucket, known before any tokenizing.

    charge = prompt tokens (estimated) + max_tokens

- Prompt tokens: token ids count as given; text as its UTF-8 bytes / 4 rounded up
  (about what BPE tokenizers give for English, and no tokenizer runs before the
  request is admitted); each image as its pixels / 28² (the encoder's patches).
- max_tokens: what the worker may generate, as Azure OpenAI counts it against a TPM
  quota; when the client sets none, the rest of the model's context window, since that
  is what the router lets the worker produce.

Nothing is refunded when the answer is shorter: the charge is a reservation, taken
before the request runs (from a leased slice or in one Redis call), and a client pays
less by asking for less.
"""

from __future__ import annotations

import math

from triskel.common.request_limits import image_pixels
from triskel.router.types import GenerationRequest, ImagePart, TextPart

BYTES_PER_TOKEN = 4
PIXELS_PER_IMAGE_TOKEN = 28 * 28


def estimated_prompt_tokens(request: GenerationRequest) -> int:
    if request.prompt_token_ids is not None:
        return len(request.prompt_token_ids)
    num_bytes = _utf8_bytes(request.prompt) if request.prompt else 0
    num_image_tokens = 0
    for message in request.messages or ():
        for part in message.parts:
            if isinstance(part, TextPart):
                num_bytes += _utf8_bytes(part.text)
            elif isinstance(part, ImagePart):
                pixels = image_pixels(part.width_px, part.height_px)
                num_image_tokens += math.ceil(pixels / PIXELS_PER_IMAGE_TOKEN)
    return math.ceil(num_bytes / BYTES_PER_TOKEN) + num_image_tokens


def charged_tokens(request: GenerationRequest, context_window: int | None) -> int:
    """The tokens-per-minute charge; `context_window` None: the model is unknown here
    (it is refused later), so only what the client asked for is charged."""
    prompt_tokens = estimated_prompt_tokens(request)
    if request.max_tokens is not None:
        return prompt_tokens + request.max_tokens
    if context_window is None:
        return prompt_tokens
    return max(prompt_tokens, context_window)


def _utf8_bytes(text: str) -> int:
    # isascii() is O(1) on CPython's strings: a long ASCII prompt is not copied to count it.
    return len(text) if text.isascii() else len(text.encode("utf-8"))

"""A request's tokens-per-minute charge: prompt estimate plus what it may generate."""

from __future__ import annotations

import pytest

from triskel.router.auth.cost import charged_tokens, estimated_prompt_tokens
from triskel.router.types import ChatMessage, GenerationRequest, ImagePart, TextPart


def request(**fields: object) -> GenerationRequest:
    return GenerationRequest(request_id="r", model="m", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"prompt_token_ids": (1, 2, 3)}, 3),  # token ids count as given
        ({"prompt": "abcdefgh"}, 2),  # 8 ASCII bytes / 4
        ({"prompt": "abcdefghi"}, 3),  # rounded up
        ({"prompt": "ééé"}, 2),  # 6 UTF-8 bytes / 4, rounded up
        (
            # Text parts add up: 8 bytes.
            {"messages": (ChatMessage("user", (TextPart("abcd"), TextPart("efgh"))),)},
            2,
        ),
        # A 56×28 px image: two patches of 28².
        ({"messages": (ChatMessage("user", (ImagePart("u", 56, 28),)),)}, 2),
        # A side of 0 is the encoder's default 336 px: 12 × 12 patches.
        ({"messages": (ChatMessage("user", (ImagePart("u"),)),)}, 144),
    ],
)
def test_prompt_estimates(fields: dict[str, object], expected: int) -> None:
    assert estimated_prompt_tokens(request(**fields)) == expected


@pytest.mark.parametrize(
    ("max_tokens", "window", "expected"),
    [
        (10, 4096, 12),  # prompt (2) + max_tokens
        (None, 4096, 4096),  # no max_tokens: the rest of the window, i.e. the window
        (None, None, 2),  # unknown model (refused later): only the prompt
        (None, 1, 2),  # a prompt beyond the window still pays for itself
    ],
)
def test_the_charge_adds_what_may_be_generated(
    max_tokens: int | None, window: int | None, expected: int
) -> None:
    assert charged_tokens(request(prompt="abcdefgh", max_tokens=max_tokens), window) == expected

"""The one validator both fronts run: a parsed `GenerationRequest` is checked here.

Each front checks what only its wire format can get wrong (JSON types, proto oneofs)
and converts; every limit on values is checked here, so HTTP and gRPC refuse the same
inputs with the same message. Fields are named in the client's spelling, which
differs between the fronts only in how paths are written (`FieldSpelling`).
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.request_limits import (
    ImageSize,
    LimitError,
    check_image_sizes,
    check_seed,
    check_stop_sequences,
)
from triskel.router.types import GenerationRequest, ImagePart, RequestError


@dataclass(frozen=True, slots=True)
class FieldSpelling:
    """How one front names the fields the checks refer to."""

    request_id: str
    messages: str
    image: str
    width: str
    height: str


HTTP_SPELLING = FieldSpelling(
    request_id="x-request-id",
    messages="messages",
    image="image_url",
    width="width",
    height="height",
)
GRPC_SPELLING = FieldSpelling(
    request_id="request_id",
    messages="chat.messages",
    image="image",
    width="width_px",
    height="height_px",
)

# OpenAI's chat roles ("developer" is o1's name for "system").
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_REQUEST_ID_CHARS = 128


def check_request(request: GenerationRequest, spelling: FieldSpelling) -> None:
    """Raises RequestError naming the first field beyond a limit."""
    check_request_id(request.request_id, spelling.request_id)
    for index, message in enumerate(request.messages or ()):
        if message.role not in CHAT_ROLES:
            raise RequestError(
                f"{spelling.messages}[{index}].role",
                f"must be one of {', '.join(CHAT_ROLES)}, got {message.role!r}",
            )
    try:
        check_stop_sequences(request.stop)
        check_seed(request.seed)
        _check_images(request, spelling)
    except LimitError as error:
        raise RequestError(error.field_name, error.message) from None


def check_request_id(request_id: str, field_name: str) -> None:
    """The client's id for a request, which travels in logs and replies (never to workers
    as it is: the orchestrator makes each worker-side id unique)."""
    if not (
        0 < len(request_id) <= MAX_REQUEST_ID_CHARS
        and request_id.isascii()
        and request_id.isprintable()
    ):
        raise RequestError(
            field_name, f"must be 1 to {MAX_REQUEST_ID_CHARS} printable ASCII characters"
        )


def _check_images(request: GenerationRequest, spelling: FieldSpelling) -> None:
    images = [
        ImageSize(
            f"{spelling.messages}[{m}].content[{p}].{spelling.image}", part.width_px, part.height_px
        )
        for m, message in enumerate(request.messages or ())
        for p, part in enumerate(message.parts)
        if isinstance(part, ImagePart)
    ]
    check_image_sizes(images, spelling.messages, (spelling.width, spelling.height))

"""What one request may ask for, checked where it enters: the router's fronts and the worker.

The router and the worker import the same limits and checks, so a request the router
lets through is never refused by the worker for its size, and a client calling a
worker directly meets the same bounds. Checks are pure and raise `LimitError` naming
the offending field in the caller's wire format, which the caller passes in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A side of 0 means "the encoder's default": Qwen2-VL's 336 px thumbnails.
DEFAULT_IMAGE_SIDE_PX = 336
# Larger sides are downscaled by clients (OpenAI scales into 2048 px).
MAX_IMAGE_SIDE_PX = 8192
# Qwen2-VL's max_pixels: 16,384 embedding tokens of 28×28 px per image.
MAX_IMAGE_PIXELS = 16384 * 28 * 28
# Every image of a request together: two full-size images (32,768 tokens at 28 px).
MAX_REQUEST_IMAGE_PIXELS = 2 * MAX_IMAGE_PIXELS
MAX_IMAGES_PER_REQUEST = 8
# OpenAI's limit on stop sequences; a cap on each keeps the held-back text small.
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 256
# Seeds are 64-bit signed integers (OpenAI's and vLLM's range).
MIN_SEED = -(2**63)
MAX_SEED = 2**63 - 1


class LimitError(ValueError):
    """A request exceeds a limit or asks for what is not served; `field_name` names the
    field, the message the limit."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message


def image_pixels(width_px: int, height_px: int) -> int:
    """Pixels the encoder will see (a side of 0 is the default side)."""
    return (width_px or DEFAULT_IMAGE_SIDE_PX) * (height_px or DEFAULT_IMAGE_SIDE_PX)


@dataclass(frozen=True, slots=True)
class ImageSize:
    """One image of a request; `field_name` is its path in the caller's wire format."""

    field_name: str
    width_px: int
    height_px: int


def check_image_sizes(
    images: Sequence[ImageSize],
    list_field: str,
    side_names: tuple[str, str] = ("width_px", "height_px"),
) -> None:
    """Raises LimitError naming `list_field` (too many images, too many pixels in all),
    an image, or one of its sides (`side_names` in the caller's spelling), so that
    nothing is encoded whose cost was not bounded first."""
    if len(images) > MAX_IMAGES_PER_REQUEST:
        raise LimitError(
            list_field, f"at most {MAX_IMAGES_PER_REQUEST} images per request, got {len(images)}"
        )
    total_pixels = 0
    for image in images:
        sides = zip(side_names, (image.width_px, image.height_px), strict=True)
        for side_name, length_px in sides:
            if not 0 <= length_px <= MAX_IMAGE_SIDE_PX:
                raise LimitError(
                    f"{image.field_name}.{side_name}",
                    f"must be between 0 and {MAX_IMAGE_SIDE_PX} pixels, got {length_px}",
                )
        pixels = image_pixels(image.width_px, image.height_px)
        if pixels > MAX_IMAGE_PIXELS:
            raise LimitError(
                image.field_name,
                f"{image.width_px}x{image.height_px} is {pixels} pixels; at most "
                f"{MAX_IMAGE_PIXELS} per image (downscale it)",
            )
        total_pixels += pixels
    if total_pixels > MAX_REQUEST_IMAGE_PIXELS:
        raise LimitError(
            list_field,
            f"images total {total_pixels} pixels; at most {MAX_REQUEST_IMAGE_PIXELS} per request",
        )


def check_stop_sequences(stop: Sequence[str]) -> None:
    """Raises LimitError naming `stop` (too many) or one of its sequences (empty, too long)."""
    if len(stop) > MAX_STOP_SEQUENCES:
        raise LimitError("stop", f"at most {MAX_STOP_SEQUENCES} sequences, got {len(stop)}")
    for index, sequence in enumerate(stop):
        if not 0 < len(sequence) <= MAX_STOP_CHARS:
            raise LimitError(
                f"stop[{index}]", f"must be 1 to {MAX_STOP_CHARS} characters, got {len(sequence)}"
            )


def check_seed(seed: int | None) -> None:
    """Raises LimitError naming `seed` when it is not a 64-bit signed integer."""
    if seed is not None and not MIN_SEED <= seed <= MAX_SEED:
        raise LimitError("seed", f"must be a 64-bit signed integer, got {seed}")

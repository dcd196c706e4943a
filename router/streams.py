"""Closing a request's event stream from a front."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from triskel.router.types import GenerationEvent

_log = logging.getLogger(__name__)


async def close_quietly(events: AsyncIterator[GenerationEvent]) -> None:
    """Closes the stream (cancelling the request on the workers if it still runs).

    Its cleanup must not replace the reply or status the front already chose, so a
    failure here is logged, not raised.
    """
    aclose = getattr(events, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        _log.exception("closing a request's event stream failed")

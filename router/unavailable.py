"""Serving failures as the client sees them: what happened and what to do, never the topology.

Worker ids, addresses, pool and filter names help an operator, not a client, and tell an
attacker where to aim; they go to the router's log (one line per failure) and the client
reads "no decode worker is available for model m; retry later".
"""

from __future__ import annotations

import logging

from triskel.router.types import ServiceError

_log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0


def unavailable(
    what: str, detail: str, retry_after_s: float | None = RETRY_AFTER_S
) -> ServiceError:
    """A ServiceError telling the client `what` (no worker names) and to retry; `detail`,
    which may name workers and addresses, is logged."""
    _log.warning("%s: %s", what, detail)
    advice = "; retry later" if retry_after_s is not None else ""
    return ServiceError(what + advice, retry_after_s=retry_after_s)

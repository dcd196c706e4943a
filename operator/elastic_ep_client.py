"""Asks one worker to change its EP size (vLLM's `POST /scale_elastic_ep`), and reads
the size it serves (`GET /metrics`, the mock's `triskel:ep_size`).

    {"new_data_parallel_size": N}  ──►  200 once the group serves with N ranks
                                        4xx/5xx with vLLM's error shape otherwise

The call blocks for the whole step (tens of seconds at timeScale 1, vLLM drains first),
so the caller runs it in the background. Failures are told without the pod's address:
they end up in events, which name the pod instead.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from triskel.operator.elastic_ep_convergence import EP_SIZE_METRIC, ep_size_in_metrics

# vLLM drains for up to its drain_timeout (120 s by default) and then scales (~31 s up
# for DeepSeek-V2-Lite); a call past this is not coming back.
STEP_TIMEOUT_S = 300.0
# An answer is a message and a few figures; an error's text is cut to keep events short.
MAX_BODY_BYTES = 64 * 1024
MAX_ERROR_CHARS = 200
# A scrape answers at once; a worker slower than this is read again next interval.
READ_TIMEOUT_S = 5.0
# A worker's /metrics is a few hundred series.
MAX_METRICS_BYTES = 1024 * 1024

Json = dict[str, Any]


class EpCallFailed(Exception):
    """The step was not done; `status` is the HTTP status when the worker answered."""

    def __init__(self, why: str, status: int | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.status = status


async def scale_elastic_ep(
    session: aiohttp.ClientSession,
    base_url: str,
    new_size: int,
    timeout_s: float = STEP_TIMEOUT_S,
) -> Json:
    """The worker's 200 answer (JSON); EpCallFailed otherwise."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.post(
            f"{base_url}/scale_elastic_ep",
            json={"new_data_parallel_size": new_size},
            allow_redirects=False,
            timeout=timeout,
        ) as response:
            body = await response.content.read(MAX_BODY_BYTES)
            if response.status != 200:
                raise EpCallFailed(f"HTTP {response.status}: {_error_text(body)}", response.status)
            answer = json.loads(body) if body else {}
    except TimeoutError:
        raise EpCallFailed(f"no answer within {timeout_s:g} s") from None
    except aiohttp.ClientConnectorError:
        raise EpCallFailed("cannot connect") from None
    except (aiohttp.ClientError, ValueError) as error:
        # The class name says enough; aiohttp's own text may carry the peer's address.
        raise EpCallFailed(type(error).__name__) from None
    return answer if isinstance(answer, dict) else {}


async def read_ep_size(
    session: aiohttp.ClientSession, base_url: str, timeout_s: float = READ_TIMEOUT_S
) -> int:
    """The EP size the worker's group serves now; EpCallFailed when it cannot be read
    (vLLM exports no such gauge)."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.get(
            f"{base_url}/metrics", allow_redirects=False, timeout=timeout
        ) as response:
            if response.status != 200:
                raise EpCallFailed(f"/metrics: HTTP {response.status}", response.status)
            text = (await response.content.read(MAX_METRICS_BYTES)).decode(errors="replace")
    except TimeoutError:
        raise EpCallFailed(f"/metrics: no answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as error:
        raise EpCallFailed(f"/metrics: {type(error).__name__}") from None
    size = ep_size_in_metrics(text)
    if size is None:
        raise EpCallFailed(f"no {EP_SIZE_METRIC} on /metrics")
    return size


def _error_text(body: bytes) -> str:
    """vLLM's `{"error": {"message": ...}}`, else the text, cut short."""
    text = body.decode("utf-8", errors="replace")
    try:
        message = json.loads(text).get("error", {}).get("message")
    except (ValueError, AttributeError):
        message = None
    return (message if isinstance(message, str) else text)[:MAX_ERROR_CHARS]

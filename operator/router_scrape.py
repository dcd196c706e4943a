"""Fetches the router's /metrics text for a graph's autoscaler: bounded, failures in words.

A failure is reported on the ServingGraph (a condition and a Warning event), so its
message speaks of the URL the user configured and nothing else: no address that name
resolved to, no redirect target (redirects are not followed), no traceback.
"""

from __future__ import annotations

import os
import socket

import aiohttp

# The router renders its metrics in milliseconds; a scrape slower than this is broken.
SCRAPE_TIMEOUT_S = 5.0
# Far above a router's exposition (tens of KiB), far below what would hurt the operator.
MAX_BODY_BYTES = 16 * 1024 * 1024


class ScrapeFailed(Exception):
    """The metrics could not be read; the message says why, in the URL's terms."""


async def fetch_metrics(
    session: aiohttp.ClientSession, url: str, timeout_s: float = SCRAPE_TIMEOUT_S
) -> str:
    """The exposition text at `url`; ScrapeFailed("cannot read URL: why") otherwise."""
    try:
        return await _fetch(session, url, timeout_s)
    except ScrapeFailed as failed:
        raise ScrapeFailed(f"cannot read {url}: {failed}") from None
    except TimeoutError:
        raise ScrapeFailed(f"cannot read {url}: no answer within {timeout_s:g} s") from None
    except aiohttp.ClientConnectorError as error:
        raise ScrapeFailed(f"cannot read {url}: {_connect_failure(error)}") from None
    except (aiohttp.ClientError, UnicodeDecodeError) as error:
        # The class name says enough (ServerDisconnectedError, InvalidURL ...); aiohttp's
        # own text may carry the peer's address.
        raise ScrapeFailed(f"cannot read {url}: {type(error).__name__}") from None


async def _fetch(session: aiohttp.ClientSession, url: str, timeout_s: float) -> str:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.get(url, allow_redirects=False, timeout=timeout) as response:
        if response.status != 200:
            raise ScrapeFailed(f"HTTP {response.status}")
        body = await response.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise ScrapeFailed(f"the answer is longer than {MAX_BODY_BYTES} bytes")
        return body.decode("utf-8")


def _connect_failure(error: aiohttp.ClientConnectorError) -> str:
    if isinstance(error.os_error, socket.gaierror):
        return "the host name does not resolve"
    # The OS error's own text names the address connected to; its errno does not.
    number = error.os_error.errno
    return f"cannot connect ({os.strerror(number)})" if number else "cannot connect"

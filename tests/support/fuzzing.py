"""What every fuzz and fault test shares: hypothesis settings bounded for CI, and the
checks that a run logged no traceback and did not grow without bound.

Hypothesis runs in a thread (`asyncio.to_thread`) while the servers under test run on
the test's event loop, so its test functions make blocking calls.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import grpc
from hypothesis import HealthCheck, settings

from support.fuzz_messages import MODEL

# Each fuzz test's budget: examples, not seconds, so a slow CI machine runs the same
# cases (bounded in time by every call's own deadline).
EXAMPLES_PER_TEST = 60
# Random cases each run (no derandomize), none remembered between runs (no database):
# a failure prints the case and the seed that reproduces it.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_TEST,
    deadline=None,  # the calls' own deadlines bound time, not hypothesis's
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
TRACEBACK_MARK = "Traceback (most recent call last)"
# Every call's bound, refusals and long answers alike (a long answer is read in part).
CALL_DEADLINE_S = 15.0
# Messages (or SSE events) read from an answer before the client cancels it: enough to
# see it stream.
MAX_MESSAGES_READ = 24
# A client's mistake or the cluster's honest limits; never UNKNOWN / INTERNAL.
CLEAR_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
# Finding 1 took a worker to 12 GB; an in-process cluster must not grow like that.
MAX_RSS_GROWTH_BYTES = 768 << 20
# The fronts' fuzzing target: every stage of a request, small and fast.
_PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 32768, timeScale: 0.01}"
FUZZ_POOLS = f"""
pools:
  - {{name: encode, role: encode, model: {MODEL}, profile: {_PROFILE}}}
  - {{name: prefill, role: prefill, model: {MODEL}, profile: {_PROFILE}}}
  - {{name: decode, role: decode, model: {MODEL}, profile: {_PROFILE}}}
"""


def tracebacks(records: Iterable[logging.LogRecord]) -> list[str]:
    """Every record at WARNING or above that carries a traceback (logged with exc_info,
    or one in its text), as "logger: message" lines. Debug records may carry one: an
    operator sees them only when asking for them."""
    found = []
    for record in records:
        text = record.getMessage()
        if record.levelno < logging.WARNING:
            continue
        if record.exc_info or record.exc_text or TRACEBACK_MARK in text:
            found.append(f"{record.name}: {text[:300]}")
    return found


def assert_no_tracebacks(records: Iterable[logging.LogRecord]) -> None:
    found = tracebacks(records)
    assert not found, f"{len(found)} traceback(s) logged:\n" + "\n".join(found[:10])


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of process `pid` (this one by default), from /proc."""
    with open(f"/proc/{pid or os.getpid()}/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")

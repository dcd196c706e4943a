"""What to do when a decode call fails: retry, continue the answer elsewhere, or stop. Pure.

Request migration, as NVIDIA Dynamo does it (its `migration_limit`): the router keeps
the answer tokens it has relayed, and a worker that fails mid-answer is replaced by a new
call on another worker whose prompt is the original prompt followed by those tokens,
asking for the tokens still due. The new worker prefills that longer prompt itself (its
prefix cache may hold the original prompt), so the client sees one answer, never a
token twice, and nothing is lost under sampling: the continuation samples after exactly
the tokens the client has.

    prompt  p0 p1 … pn │ answer so far  a0 … ak (the client has them)
    next call:  token_ids = p0 … pn a0 … ak,  max_tokens = max_tokens − (k + 1)

A call that failed before it produced a token is a retry (`maxAttempts` such calls in
all); one that failed after is a migration (`migrationLimit` of them, 0: none, so a
failure mid-answer ends it as before). A seeded request keeps its seed: its continuation
is reproducible for a given failure point, but it is not the answer an uninterrupted run
with that seed gives, as no engine can resume another's random state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_attempts: int
    """Calls that may fail before producing a token (`routing.maxAttempts`)."""
    migration_limit: int
    """Calls that may fail after producing tokens and be continued elsewhere."""


@dataclass(frozen=True, slots=True)
class Failures:
    """A decode's failed calls so far."""

    num_retries: int = 0
    """Calls that failed before producing a token."""
    num_migrations: int = 0
    """Calls that failed after producing tokens."""


class Next(StrEnum):
    # The call produced nothing: the same continuation on another worker.
    RETRY = "retry"
    # The call produced tokens: another worker continues after them.
    MIGRATE = "migrate"
    # Every token asked for had arrived; only the worker's finish was lost.
    COMPLETE = "complete"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Decision:
    next: Next
    failures: Failures
    """`failures` counting this one."""
    reason: str = ""
    """Why, for the router's log line (a give-up's limit)."""


@dataclass(frozen=True, slots=True)
class Continuation:
    """A decode call's prompt and token budget."""

    token_ids: tuple[int, ...]
    max_tokens: int


def after_failure(
    failures: Failures,
    limits: DecodeLimits,
    answer_token_ids: Sequence[int],
    num_call_tokens: int,
    max_tokens: int,
) -> Decision:
    """What follows a failed decode call that added `num_call_tokens` to the answer's
    `answer_token_ids` (every answer token the client has, from any call)."""
    if len(answer_token_ids) >= max_tokens:
        return Decision(Next.COMPLETE, failures)
    if num_call_tokens == 0:
        counted = Failures(failures.num_retries + 1, failures.num_migrations)
        if counted.num_retries >= limits.max_attempts:
            why = f"{counted.num_retries} calls failed before a token (maxAttempts)"
            return Decision(Next.GIVE_UP, counted, why)
        step = Next.RETRY
    else:
        counted = Failures(failures.num_retries, failures.num_migrations + 1)
        if counted.num_migrations > limits.migration_limit:
            why = f"migrationLimit ({limits.migration_limit}) reached"
            return Decision(Next.GIVE_UP, counted, why)
        step = Next.MIGRATE
    if any(token_id < 0 for token_id in answer_token_ids):
        # A vLLM worker that streams text without token ids: the answer cannot be replayed.
        return Decision(Next.GIVE_UP, counted, "the worker did not tell the answer's token ids")
    return Decision(step, counted)


def continuation(
    prompt_token_ids: Sequence[int], answer_token_ids: Sequence[int], max_tokens: int
) -> Continuation:
    """The call that continues an answer after `answer_token_ids` (the first call, when
    there are none). ValueError if the answer is complete already."""
    if len(answer_token_ids) >= max_tokens:
        raise ValueError(f"the answer has {len(answer_token_ids)} of {max_tokens} tokens")
    return Continuation(
        tuple(prompt_token_ids) + tuple(answer_token_ids), max_tokens - len(answer_token_ids)
    )

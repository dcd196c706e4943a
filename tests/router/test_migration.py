"""The pure migration policy: after a failed decode call, retry, migrate, complete or give
up; and the call that continues an answer."""

from __future__ import annotations

import pytest

from triskel.router.migration import (
    Continuation,
    DecodeLimits,
    Failures,
    Next,
    after_failure,
    continuation,
)

LIMITS = DecodeLimits(max_attempts=2, migration_limit=3)
MAX_TOKENS = 10


@pytest.mark.parametrize(
    ("failures", "limits", "answer", "num_call_tokens", "expected_next", "expected_failures"),
    [
        # The first call fails before a token: another worker gets the same call.
        (Failures(), LIMITS, [], 0, Next.RETRY, Failures(1, 0)),
        # The second call before a token, with maxAttempts 2: both tries are spent.
        (Failures(1, 0), LIMITS, [], 0, Next.GIVE_UP, Failures(2, 0)),
        # Three tokens in, the worker fails: its tokens stay, another continues.
        (Failures(), LIMITS, [7, 8, 9], 3, Next.MIGRATE, Failures(0, 1)),
        # A retry earlier (say a failed first pick) does not count against migrations.
        (Failures(1, 0), LIMITS, [7, 8], 2, Next.MIGRATE, Failures(1, 1)),
        # The fourth mid-answer failure with migrationLimit 3: give up.
        (Failures(0, 3), LIMITS, [7, 8, 9], 1, Next.GIVE_UP, Failures(0, 4)),
        # migrationLimit 0: a failure mid-answer ends it, as before migration existed.
        (Failures(), DecodeLimits(2, 0), [7], 1, Next.GIVE_UP, Failures(0, 1)),
        # A migrated answer's next worker fails before its first token: a retry, which
        # still continues after the answer so far.
        (Failures(0, 1), LIMITS, [7, 8], 0, Next.RETRY, Failures(1, 1)),
        # A P/D decode fails after its pull, before its first token: the client has the
        # prefill's token, so the retry prefills locally after it (no skipping).
        (Failures(), LIMITS, [7], 0, Next.RETRY, Failures(1, 0)),
        # Every token asked for arrived and only the finish was lost: nothing to redo,
        # even at the limit.
        (Failures(0, 3), LIMITS, list(range(MAX_TOKENS)), 4, Next.COMPLETE, Failures(0, 3)),
    ],
)
def test_after_failure(
    failures: Failures,
    limits: DecodeLimits,
    answer: list[int],
    num_call_tokens: int,
    expected_next: Next,
    expected_failures: Failures,
) -> None:
    decision = after_failure(failures, limits, answer, num_call_tokens, MAX_TOKENS)
    assert (decision.next, decision.failures) == (expected_next, expected_failures)


@pytest.mark.parametrize(
    ("failures", "answer", "num_call_tokens", "reason"),
    [
        (Failures(1, 0), [], 0, "2 calls failed before a token (maxAttempts)"),
        (Failures(0, 3), [7], 1, "migrationLimit (3) reached"),
        # A vLLM worker streaming text without token ids (-1 placeholders): the answer
        # cannot be put back in a prompt, so it ends as before.
        (Failures(), [7, -1, -1], 2, "the worker did not tell the answer's token ids"),
        (Failures(0, 1), [-1], 0, "the worker did not tell the answer's token ids"),
    ],
)
def test_a_give_up_says_why(
    failures: Failures, answer: list[int], num_call_tokens: int, reason: str
) -> None:
    decision = after_failure(failures, LIMITS, answer, num_call_tokens, MAX_TOKENS)
    assert (decision.next, decision.reason) == (Next.GIVE_UP, reason)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # No answer yet: the first call, the prompt and the whole budget.
        ([], Continuation((1, 2, 3), 10)),
        # Four tokens in: they follow the prompt, and six remain due.
        ([7, 8, 9, 7], Continuation((1, 2, 3, 7, 8, 9, 7), 6)),
        # One token short: a call for the last one.
        (list(range(100, 109)), Continuation((1, 2, 3, *range(100, 109)), 1)),
    ],
)
def test_continuation(answer: list[int], expected: Continuation) -> None:
    continued = continuation([1, 2, 3], answer, MAX_TOKENS)
    assert continued == expected
    # Prompt + budget is the original's: what fit the context window still fits it.
    assert len(continued.token_ids) + continued.max_tokens == 3 + MAX_TOKENS


def test_a_complete_answer_has_no_continuation() -> None:
    with pytest.raises(ValueError, match="the answer has 10 of 10 tokens"):
        continuation([1, 2, 3], list(range(MAX_TOKENS)), MAX_TOKENS)

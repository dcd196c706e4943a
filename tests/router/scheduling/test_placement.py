"""Adaptive disaggregation's choice, with worked numbers from the Llama-3.1-8B H100 profile:
prefill `7.75 + 0.047·L + 8.7e-7·L²` ms, a decode step `7.75 + 5.1e-5·Σcontext + 0.02·batch`
ms, 8,192 tokens a step."""

from __future__ import annotations

import pytest

from triskel.common.profiles import load_profile
from triskel.router.scheduling.calibration import Calibration, Kind
from triskel.router.scheduling.placement import (
    Answer,
    Budgets,
    Candidate,
    Outlook,
    local_outlook,
    prefers_local,
    remote_outlook,
)
from triskel.router.scheduling.types import ActiveLoad, Endpoint

PROFILE = load_profile("llama-3.1-8b-h100")


def worker(worker_id: str, num_running: int = 0, num_queued_tokens: int = 0) -> Endpoint:
    active = ActiveLoad(num_requests=num_running, num_prefill_tokens=num_queued_tokens)
    return Endpoint(worker_id, PROFILE.model, 16, active=active, profile=PROFILE)


def test_a_busy_decode_worker_sends_the_prefill_to_the_prefill_pool() -> None:
    # A 2,000-token prompt, 200 tokens to answer; the decode worker runs 32 answers and
    # lacks 1,000 prompt tokens, the idle prefill worker lacks all 2,000.
    answer = Answer(num_prompt_tokens=2000, max_tokens=200)
    decode = Candidate(worker("d", num_running=32), 1000)
    prefill = Candidate(worker("p"), 2000)
    local = local_outlook(decode, answer, Calibration())
    remote = remote_outlook(decode, prefill, answer, Calibration())
    # Local: prefill(1,000) = 7.75 + 47 + 0.87 = 55.62 ms; a decode step with 33 answers
    # of 2,000 tokens = 7.75 + 3.366 + 0.66 = 11.776 ms, whose decode part (4.026 ms)
    # rides along with the one chunk: TTFT 59.646 ms. TPOT 11.776 + 55.62 / 200 =
    # 12.0541 ms. Delay: 59.646 + 32 answers × 55.62 ms = 1,839.486 ms.
    assert local.ttft_ms == pytest.approx(59.646)
    assert local.tpot_ms == pytest.approx(12.0541)
    assert local.delay_ms == pytest.approx(1839.486)
    # Remote: prefill(2,000) = 7.75 + 94 + 3.48 = 105.23 ms; TPOT one clean step.
    assert remote.ttft_ms == pytest.approx(105.23)
    assert remote.tpot_ms == pytest.approx(11.776)
    assert remote.delay_ms == pytest.approx(105.23)
    # Both meet a 5 s / 100 ms SLO: the lower delay wins, the prefill pool's.
    assert not prefers_local(local, remote, Budgets(5000, 100))


def test_an_idle_decode_worker_with_the_prefix_prefills_the_rest_itself() -> None:
    answer = Answer(num_prompt_tokens=2000, max_tokens=200)
    decode = Candidate(worker("d"), 1000)
    prefill = Candidate(worker("p"), 2000)
    local = local_outlook(decode, answer, Calibration())
    remote = remote_outlook(decode, prefill, answer, Calibration())
    # Nobody decodes there: a step of this answer alone is 7.75 + 0.102 + 0.02 = 7.872 ms,
    # TTFT 55.62 + 0.122 = 55.742 ms, which is also the whole delay (< 105.23).
    assert local.delay_ms == pytest.approx(55.742)
    assert prefers_local(local, remote, Budgets(5000, 100))
    assert prefers_local(local, remote, Budgets())


def test_queued_prefill_work_counts_on_either_side() -> None:
    # 16,000 tokens queued on the prefill worker: two steps' overhead plus 0.047 ms a
    # token = 15.5 + 752 = 767.5 ms ahead, so its TTFT is 767.5 + 105.23 = 872.73 ms.
    answer = Answer(num_prompt_tokens=2000, max_tokens=200)
    decode = Candidate(worker("d", num_running=32), 1000)
    prefill = Candidate(worker("p", num_queued_tokens=16_000), 2000)
    local = local_outlook(decode, answer, Calibration())
    remote = remote_outlook(decode, prefill, answer, Calibration())
    assert remote.ttft_ms == pytest.approx(872.73)
    # Without a TTFT budget the lower delay (872.73 < 1,839.486) keeps it remote; with
    # a 500 ms budget only the local prefill meets it.
    assert not prefers_local(local, remote, Budgets())
    assert prefers_local(local, remote, Budgets(ttft_ms=500))


def test_a_short_answer_cannot_absorb_a_long_local_prefill() -> None:
    # An idle decode worker lacks 4,000 of 8,000 tokens; the prefill worker lacks all.
    answer = Answer(num_prompt_tokens=8000, max_tokens=10)
    decode = Candidate(worker("d"), 4000)
    prefill = Candidate(worker("p"), 8000)
    local = local_outlook(decode, answer, Calibration())
    remote = remote_outlook(decode, prefill, answer, Calibration())
    # Local: prefill(4,000) = 7.75 + 188 + 13.92 = 209.67 ms spread over 10 tokens on a
    # step of 7.75 + 0.408 + 0.02 = 8.178 ms: TPOT 29.145 ms. Remote: prefill(8,000) =
    # 7.75 + 376 + 55.68 = 439.43 ms, TPOT 8.178 ms.
    assert local.tpot_ms == pytest.approx(29.145)
    assert remote.ttft_ms == pytest.approx(439.43)
    assert local.delay_ms < remote.delay_ms
    assert prefers_local(local, remote, Budgets())
    # A 20 ms TPOT budget: the local prefill would break it for this answer.
    assert not prefers_local(local, remote, Budgets(tpot_ms=20))


def test_ties_go_to_the_prefill_pool() -> None:
    same = Outlook(100.0, 10.0, 100.0, expected=None)  # type: ignore[arg-type]
    assert not prefers_local(same, same, Budgets())


def test_calibration_scales_a_worker_slower_than_its_profile() -> None:
    calibration = Calibration()
    for _ in range(30):  # the prefill worker keeps taking 4x its predicted TTFT
        calibration.observe("p", Kind.TTFT, 100.0, 400.0)
    answer = Answer(num_prompt_tokens=2000, max_tokens=200)
    decode = Candidate(worker("d", num_running=4), 1000)
    prefill = Candidate(worker("p"), 2000)
    raw = remote_outlook(decode, prefill, answer, Calibration())
    scaled = remote_outlook(decode, prefill, answer, calibration)
    # 1 + 3 x (1 - 0.8^30) = 3.9963.
    factor = calibration.factor("p", Kind.TTFT)
    assert factor == pytest.approx(3.9963, abs=1e-4)
    assert scaled.ttft_ms == pytest.approx(105.23 * factor)
    # What the driver later compares with is the unscaled prediction.
    assert scaled.expected.ttft_ms == pytest.approx(105.23)
    # Local with 4 answers decoding: a step of 7.75 + 0.51 + 0.1 = 8.36 ms, TTFT 55.62 +
    # 0.61 = 56.23 ms, delay 56.23 + 4 x 55.62 = 278.71 ms: more than the profile's
    # 105.23 ms remote, less than the observed ~420.5 ms.
    local = local_outlook(decode, answer, calibration)
    assert local.delay_ms == pytest.approx(278.71)
    assert not prefers_local(local, raw, Budgets())
    assert prefers_local(local, scaled, Budgets())


def test_without_a_profile_a_flat_per_token_guess_still_ranks_by_load() -> None:
    bare = Endpoint("d", "m", 16, active=ActiveLoad(num_requests=0))
    busy = Endpoint("p", "m", 16, active=ActiveLoad(num_prefill_tokens=50_000))
    answer = Answer(num_prompt_tokens=1000, max_tokens=100)
    local = local_outlook(Candidate(bare, 1000), answer, Calibration())
    remote = remote_outlook(Candidate(bare, 1000), Candidate(busy, 1000), answer, Calibration())
    # 0.1 ms a token: 100 ms here against 5,100 ms behind the queue.
    assert local.ttft_ms == pytest.approx(100.0)
    assert remote.ttft_ms == pytest.approx(5100.0)
    assert prefers_local(local, remote, Budgets())

"""SloJudge: a run's sure misses as they happen, and when the target is out of reach."""

from __future__ import annotations

import pytest

from triskel.simulator.metrics import SloTargets
from triskel.simulator.records import RequestRecord
from triskel.simulator.slo_judge import SloJudge

# TTFT 1 s, TPOT 100 ms; 90 % of 10 requests must meet both: a second miss decides.
SLO = SloTargets(ttft_s=1.0, tpot_s=0.1, attainment_target=0.9)


def record(position: int, first_token_s: float | None, finish_s: float | None) -> RequestRecord:
    # Arrived at 0 with 11 output tokens: TPOT = (finish - first token) / 10.
    return RequestRecord(position, 0.0, 100, 11, first_token_s, finish_s)


def test_a_second_miss_of_ten_puts_the_target_out_of_reach() -> None:
    judge = SloJudge(10, SLO)
    judge.closed(0, record(0, None, None))  # failed: a miss
    # 9 of 10 can still meet it: 0.9 >= 0.9.
    assert judge.max_attainment == pytest.approx(0.9)
    assert not judge.is_out_of_reach
    judge.closed(1, record(1, 0.5, 5.0))  # TPOT (5.0 - 0.5) / 10 = 0.45 s > 0.1 s
    assert judge.num_missed == 2 and judge.is_out_of_reach


def test_a_request_meeting_both_targets_is_no_miss() -> None:
    judge = SloJudge(10, SLO)
    judge.arrived(0, 0.0)
    judge.first_token(0)
    judge.closed(0, record(0, 0.5, 1.0))  # TTFT 0.5 s, TPOT 0.05 s
    judge.advance(10.0)
    assert judge.num_missed == 0


def test_a_request_still_waiting_past_its_deadline_misses_then_and_only_once() -> None:
    judge = SloJudge(10, SLO)
    judge.arrived(0, 0.0)
    judge.advance(1.0)  # TTFT would be 1.0 s at best: still within the target
    assert judge.num_missed == 0
    judge.advance(1.25)  # its first token comes at 1.25 s or later: TTFT > 1 s
    assert judge.num_missed == 1
    judge.first_token(0)
    judge.closed(0, record(0, 3.0, 3.5))  # the late request closes: already counted
    assert judge.num_missed == 1


def test_a_request_started_in_time_is_judged_at_its_close() -> None:
    judge = SloJudge(10, SLO)
    judge.arrived(0, 0.0)
    judge.first_token(0)
    judge.advance(5.0)  # past the deadline, but its first token came in time
    assert judge.num_missed == 0


def test_deadlines_pass_in_arrival_order() -> None:
    judge = SloJudge(10, SLO)
    judge.arrived(0, 0.0)
    judge.arrived(1, 2.0)
    judge.advance(2.5)  # request 0's deadline (1 s) passed, request 1's (3 s) not
    assert judge.num_missed == 1
    judge.advance(3.5)
    assert judge.num_missed == 2


def test_no_requests_is_refused() -> None:
    with pytest.raises(ValueError, match="num_requests"):
        SloJudge(0, SLO)

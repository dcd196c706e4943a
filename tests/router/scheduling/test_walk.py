"""The one request walk the router and the simulator both drive: every branch."""

from __future__ import annotations

import pytest

from triskel.common.profiles import load_profile
from triskel.common.routing_api import DisaggregationMode, DisaggregationSpec
from triskel.router.scheduling.calibration import Calibration
from triskel.router.scheduling.placement import Answer, Budgets, Candidate
from triskel.router.scheduling.types import ActiveLoad, Endpoint, Stage
from triskel.router.scheduling.walk import Decode, Local, Pick, Prefill, Walk, next_step

PROFILE = load_profile("llama-3.1-8b-h100")
ANSWER = Answer(num_prompt_tokens=2000, max_tokens=200)


def walk(mode: str, is_unified: bool = False, threshold: int = 512) -> Walk:
    policy = DisaggregationSpec(mode=DisaggregationMode(mode))
    if mode == "conditional":
        policy = DisaggregationSpec(
            mode=DisaggregationMode.CONDITIONAL, max_local_prefill_tokens=threshold
        )
    return Walk(policy, is_unified, ANSWER, Budgets(5000, 100))


def candidate(worker_id: str, uncached: int, num_running: int = 0) -> Candidate:
    endpoint = Endpoint(
        worker_id, PROFILE.model, 16, active=ActiveLoad(num_requests=num_running), profile=PROFILE
    )
    return Candidate(endpoint, uncached)


def steps(w: Walk) -> Pick | Local | Prefill | Decode:
    return next_step(w, Calibration())


def test_unified_picks_then_runs_locally() -> None:
    w = walk("always", is_unified=True)  # the mode does not matter without P/D pools
    assert steps(w) == Pick(Stage.UNIFIED)
    u = candidate("u", 2000)
    assert steps(w.picked(Stage.UNIFIED, u)) == Local(u, Stage.UNIFIED)


def test_always_prefills_remotely_and_picks_the_decode_worker_after() -> None:
    w = walk("always")
    assert steps(w) == Pick(Stage.PREFILL)
    p = candidate("p", 2000)
    w = w.picked(Stage.PREFILL, p)
    assert steps(w) == Prefill(p)
    w = w.prefilled()
    assert steps(w) == Pick(Stage.DECODE)
    d = candidate("d", 2000)
    assert steps(w.picked(Stage.DECODE, d)) == Decode(d)


def test_never_prefills_on_the_decode_worker() -> None:
    w = walk("never")
    assert steps(w) == Pick(Stage.DECODE)
    d = candidate("d", 100_000)
    assert steps(w.picked(Stage.DECODE, d)) == Local(d, Stage.DECODE)


@pytest.mark.parametrize(("uncached", "is_local"), [(511, True), (512, False)])
def test_conditional_goes_local_below_the_threshold(uncached: int, is_local: bool) -> None:
    w = walk("conditional", threshold=512)
    assert steps(w) == Pick(Stage.DECODE)
    d = candidate("d", uncached)
    w = w.picked(Stage.DECODE, d)
    if is_local:
        assert steps(w) == Local(d, Stage.DECODE)
        return
    assert steps(w) == Pick(Stage.PREFILL)
    p = candidate("p", 2000)
    w = w.picked(Stage.PREFILL, p)
    # Conditional predicts nothing: no expectation to calibrate.
    assert steps(w) == Prefill(p)
    # The decode worker picked first takes the KV: no second pick.
    assert steps(w.prefilled()) == Decode(d)


def test_adaptive_compares_every_prompt_however_short() -> None:
    w = walk("adaptive")
    assert steps(w) == Pick(Stage.DECODE)
    # 10 uncached tokens, which conditional would prefill locally without asking.
    w = w.picked(Stage.DECODE, candidate("d", 10, num_running=200))
    assert steps(w) == Pick(Stage.PREFILL)


def test_adaptive_prefills_on_a_busy_decode_workers_peer() -> None:
    d = candidate("d", 1000, num_running=32)
    p = candidate("p", 2000)
    w = walk("adaptive").picked(Stage.DECODE, d).picked(Stage.PREFILL, p)
    step = steps(w)
    assert isinstance(step, Prefill) and step.worker == p
    # Its predictions travel with it, unscaled, to be compared with what is observed.
    assert step.expected is not None
    assert (step.expected.prefill_worker_id, step.expected.decode_worker_id) == ("p", "d")
    assert step.expected.ttft_ms == pytest.approx(105.23)
    assert steps(w.prefilled()) == Decode(d)


def test_adaptive_prefills_on_an_idle_decode_worker_that_holds_the_prefix() -> None:
    d = candidate("d", 1000)
    w = walk("adaptive").picked(Stage.DECODE, d).picked(Stage.PREFILL, candidate("p", 2000))
    step = steps(w)
    assert isinstance(step, Local) and (step.worker, step.stage) == (d, Stage.DECODE)
    assert step.expected is not None and step.expected.prefill_worker_id == "d"


def test_the_same_walk_gives_the_same_step() -> None:
    w = walk("adaptive").picked(Stage.DECODE, candidate("d", 1000, 5))
    w = w.picked(Stage.PREFILL, candidate("p", 2000))
    assert steps(w) == steps(w)


def test_the_walk_picks_no_encoder() -> None:
    with pytest.raises(ValueError, match="stage: the walk picks no encode worker"):
        walk("always").picked(Stage.ENCODE, candidate("e", 0))

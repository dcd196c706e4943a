"""Where a disaggregated request prefills, per mode."""

from __future__ import annotations

import pytest

from triskel.common.profiles import load_profile
from triskel.common.routing_api import DisaggregationMode, DisaggregationSpec
from triskel.router.scheduling.disaggregation import (
    LocalPrefill,
    decode_is_faster,
    local_prefill,
    needs_decode_first,
)
from triskel.router.scheduling.types import ActiveLoad

from support.scheduling import endpoint

PROFILE = load_profile("llama-3.1-8b-h100")


def spec(mode: str, threshold: int = 512) -> DisaggregationSpec:
    return DisaggregationSpec(mode=DisaggregationMode(mode), max_local_prefill_tokens=threshold)


@pytest.mark.parametrize(
    ("mode", "uncached", "expected"),
    [
        ("always", 0, LocalPrefill.NO),
        ("never", 100_000, LocalPrefill.YES),
        ("conditional", 511, LocalPrefill.YES),
        ("conditional", 512, LocalPrefill.NO),
        ("adaptive", 511, LocalPrefill.YES),
        ("adaptive", 512, LocalPrefill.COMPARE),
    ],
)
def test_each_mode_decides_from_the_uncached_suffix_on_the_decode_worker(
    mode: str, uncached: int, expected: LocalPrefill
) -> None:
    assert local_prefill(spec(mode), uncached) is expected


def test_only_always_skips_the_decode_pick_before_prefill() -> None:
    assert not needs_decode_first(spec("always"))
    for mode in ("never", "conditional", "adaptive"):
        assert needs_decode_first(spec(mode))


def test_a_queued_prefill_worker_loses_to_an_idle_decode_worker() -> None:
    decode = endpoint("d", profile=PROFILE)
    busy_prefill = endpoint("p", profile=PROFILE, active=ActiveLoad(4, 40_000, 0))
    assert decode_is_faster(decode, 8_000, busy_prefill, 8_000)


def test_an_idle_prefill_worker_keeps_the_request_and_ties_go_to_it() -> None:
    busy_decode = endpoint("d", profile=PROFILE, active=ActiveLoad(2, 16_000, 0))
    prefill = endpoint("p", profile=PROFILE)
    assert not decode_is_faster(busy_decode, 8_000, prefill, 8_000)
    assert not decode_is_faster(endpoint("d", profile=PROFILE), 8_000, prefill, 8_000)


def test_a_cached_prefix_on_the_decode_worker_counts() -> None:
    decode = endpoint("d", profile=PROFILE, active=ActiveLoad(1, 2_000, 0))
    prefill = endpoint("p", profile=PROFILE)
    # 2,000 queued tokens plus a 1,000-token suffix beat a 12,000-token cold prefill.
    assert decode_is_faster(decode, 1_000, prefill, 12_000)

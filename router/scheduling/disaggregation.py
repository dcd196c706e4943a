"""Where a disaggregated request prefills: on a prefill worker, or on its decode worker.

Pure, so the live router (`triskel.router.flows`) and the simulator decide alike.

    always       a prefill worker, every time
    never        the decode worker, every time
    conditional  the decode worker when it lacks fewer than `maxLocalPrefillTokens`
                 of the prompt (Dynamo's conditional disaggregation)
    adaptive     as conditional; otherwise the decode worker still wins when its
                 predicted TTFT is lower than the picked prefill worker's

Adaptive exists because a prefill pool sized for the mean load queues during bursts
while the decode pool's compute sits mostly idle (decode steps are memory-bound).
Running an occasional prefill there costs the decode batch one longer step, which a
mean-TPOT SLO absorbs; a prefill queue costs every request behind it its TTFT.
"""

from __future__ import annotations

from enum import Enum

from triskel.common.routing_api import DisaggregationMode, DisaggregationSpec
from triskel.router.scheduling.producers.latency_predictor import predict_ttft_ms
from triskel.router.scheduling.types import Endpoint


class LocalPrefill(Enum):
    YES = "yes"
    NO = "no"
    # Adaptive and the suffix is long: pick a prefill worker, then `decode_is_faster`.
    COMPARE = "compare"


def needs_decode_first(policy: DisaggregationSpec) -> bool:
    """Whether the decode worker is picked before the prefill decision."""
    return policy.mode is not DisaggregationMode.ALWAYS


def local_prefill(policy: DisaggregationSpec, num_uncached_on_decode: int) -> LocalPrefill:
    """The decision once the decode worker is known (`always` never asks)."""
    mode = policy.mode
    if mode is DisaggregationMode.ALWAYS:
        return LocalPrefill.NO
    if mode is DisaggregationMode.NEVER:
        return LocalPrefill.YES
    if num_uncached_on_decode < policy.max_local_prefill_tokens:
        return LocalPrefill.YES
    if mode is DisaggregationMode.ADAPTIVE:
        return LocalPrefill.COMPARE
    return LocalPrefill.NO


def decode_is_faster(
    decode: Endpoint, num_uncached_on_decode: int, prefill: Endpoint, num_uncached_on_prefill: int
) -> bool:
    """Adaptive: the decode worker's predicted TTFT is strictly lower than the prefill
    worker's (ties go to the prefill pool, which is there for it)."""
    return predict_ttft_ms(decode, num_uncached_on_decode) < predict_ttft_ms(
        prefill, num_uncached_on_prefill
    )

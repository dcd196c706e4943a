from __future__ import annotations

import re

import pytest

from triskel.common.api import Role
from triskel.router.registry import RegistryError, ServingMode, WorkerRegistry
from triskel.router.worker_client import WorkerClient

from support.fake_workers import fake_worker as worker


def test_prefill_and_decode_workers_make_a_disaggregated_model() -> None:
    registry = WorkerRegistry(
        [
            worker("p0", Role.PREFILL),
            worker("d0", Role.DECODE),
            worker("e0", Role.ENCODE),
            worker("u0", Role.UNIFIED, model="other", ctx=4096),
        ]
    )
    pools = registry.pools("m")
    assert pools is not None and pools.mode is ServingMode.DISAGGREGATED
    assert [w.worker_id for w in pools.encoders] == ["e0"]
    other = registry.pools("other")
    assert other is not None and other.mode is ServingMode.UNIFIED
    # Unified workers encode images themselves when there is no encode pool.
    assert [w.worker_id for w in other.encoders] == ["u0"]
    assert [(c.name, c.max_context_tokens) for c in registry.model_cards()] == [
        ("m", 8192),
        ("other", 4096),
    ]


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        ([worker("p0", Role.PREFILL)], "model m: has no decode workers"),
        ([worker("d0", Role.DECODE)], "model m: has no prefill workers"),
        ([worker("e0", Role.ENCODE)], "needs prefill + decode or unified"),
        # Different block sizes would make prefix hashes and KV handles disagree.
        (
            [worker("p0", Role.PREFILL, block=16), worker("d0", Role.DECODE, block=32)],
            "block_size_tokens [16, 32]",
        ),
    ],
)
def test_unservable_deployments_are_refused(workers: list[WorkerClient], message: str) -> None:
    with pytest.raises(RegistryError, match=re.escape(message)):
        WorkerRegistry(workers)


def test_worker_counts_per_model_and_role_follow_a_replace() -> None:
    registry = WorkerRegistry(
        [worker("p0", Role.PREFILL), worker("d0", Role.DECODE), worker("d1", Role.DECODE)]
    )
    assert registry.worker_counts() == {("m", "prefill"): 1, ("m", "decode"): 2}
    registry.replace([worker("p0", Role.PREFILL), worker("d0", Role.DECODE)])
    assert registry.worker_counts() == {("m", "prefill"): 1, ("m", "decode"): 1}

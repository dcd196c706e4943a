"""Cluster shapes: which combinations are valid, and the instances they build."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from triskel.common.api import Role
from triskel.simulator.cluster import ClusterShape, build_cluster, engine_config


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs num_unified > 0"),
        ({"num_unified": 2, "num_decode": 1}, "cannot be combined"),
        ({"num_prefill": 2}, "needs both roles"),
        ({"num_decode": 2}, "needs both roles"),
        ({"num_unified": 1, "kv_capacity_tokens": 0}, "kv_capacity_tokens"),
        ({"num_unified": 1, "typo": 1}, "typo"),
    ],
)
def test_refuses_bad_shapes(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ClusterShape.model_validate(fields)


def test_builds_disaggregated_instances_in_role_order() -> None:
    cluster = build_cluster(ClusterShape(num_prefill=2, num_decode=1))
    assert [i.worker_id for i in cluster.instances] == ["prefill-0", "prefill-1", "decode-0"]
    assert [i.worker_id for i in cluster.of(Role.DECODE)] == ["decode-0"]
    assert cluster.of(Role.UNIFIED) == ()
    assert ClusterShape(num_prefill=2, num_decode=1).is_disaggregated


def test_kv_capacity_override_sizes_every_engine() -> None:
    shape = ClusterShape(num_unified=2, kv_capacity_tokens=1600)
    cluster = build_cluster(shape)
    # 1,600 tokens in 16-token blocks (the profile's block size) = 100 blocks each.
    assert [i.core.config.num_kv_blocks for i in cluster.instances] == [100, 100]
    assert not shape.is_disaggregated


def test_unknown_profile_is_named() -> None:
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        build_cluster(ClusterShape(num_unified=1, profile="nope"))


def test_a_host_tier_counts_in_the_capacity_and_needs_a_host_link() -> None:
    shape = ClusterShape(
        num_prefill=1, num_decode=2, kv_capacity_tokens=1000, host_kv_capacity_tokens=3000
    )
    assert shape.total_kv_capacity_tokens() == 3 * 4000
    assert engine_config(shape).num_host_kv_blocks == 3000 // 16
    with pytest.raises(ValidationError, match=r"host_kv_capacity_tokens: profile llama-3\.1-8b-l4"):
        ClusterShape(num_unified=1, profile="llama-3.1-8b-l4", host_kv_capacity_tokens=3000)

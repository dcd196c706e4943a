"""The policy files of docs/benchmarks.md load and run on a disaggregated cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from triskel.simulator.cluster import ClusterShape
from triskel.simulator.command import load_policy
from triskel.simulator.run import simulate
from triskel.traces import load_trace

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "bench" / "policies").rglob("*.yaml"))
SAMPLE = ROOT / "tests" / "data" / "traces" / "mooncake_conversation_head200.jsonl"


def test_the_comparison_has_every_peer_and_triskel() -> None:
    names = {path.stem for path in POLICIES}
    assert {"least-load", "llm-d", "dynamo", "sglang", "dualmap", "triskel"} <= names


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_each_policy_serves_every_request_of_a_slice(path: Path) -> None:
    policy = load_policy(str(path))
    trace = load_trace(str(SAMPLE), 12)
    result = simulate(trace, ClusterShape(num_prefill=2, num_decode=2), policy.routing)
    assert all(record.is_finished for record in result.requests)

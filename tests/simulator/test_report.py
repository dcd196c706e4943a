"""comparison_table and to_json: one row per policy in the given order, same numbers."""

from __future__ import annotations

import json

import pytest

from triskel.simulator.goodput import GoodputResult, Probe
from triskel.simulator.metrics import RunMetrics, SloTargets, summarize
from triskel.simulator.records import InstanceRecord, RequestRecord, RunResult
from triskel.simulator.report import PolicyRow, comparison_table, to_json

SLO = SloTargets(ttft_s=1.0, tpot_s=0.1)


def metrics(policy: str, ttft_s: float) -> RunMetrics:
    # Two requests of 100 prompt tokens, 30 cached each; 11 tokens decoded in 0.5 s.
    requests = [
        RequestRecord(
            index=i,
            arrival_s=float(i),
            num_input_tokens=100,
            num_output_tokens=11,
            first_token_s=i + ttft_s,
            finish_s=i + ttft_s + 0.5,
            num_cached_tokens=30,
            kv_bytes_moved=1_500_000_000,
        )
        for i in range(2)
    ]
    instances = [InstanceRecord("a", "prefill", 3.0), InstanceRecord("b", "prefill", 1.0)]
    return summarize(RunResult(policy, 1.0, requests, instances, duration_s=4.0), SLO)


def search(best: Probe | None, *, is_capped: bool = False) -> GoodputResult:
    probes = (Probe(0.5, 1.0, 1.0), Probe(1.0, 0.2, 2.0))
    return GoodputResult(target=0.9, best=best, is_capped=is_capped, probes=probes)


ROWS: list[PolicyRow] = [
    ("prefix-aware", metrics("prefix-aware", ttft_s=0.25), search(Probe(2.5, 0.95, 5.0))),
    ("round-robin", metrics("round-robin", ttft_s=2.0), search(None)),
    ("random", metrics("random", ttft_s=0.5), None),
]


def test_table_has_one_row_per_policy_in_the_given_order() -> None:
    lines = comparison_table(ROWS, bound=0.6).splitlines()
    assert lines[0].startswith("| Policy | Goodput")
    assert lines[1].startswith("| --- |")
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        "prefix-aware",
        "round-robin",
        "random",
    ]


@pytest.mark.parametrize(
    ("row", "cell"),
    [
        # Goodput 2.5× the trace rate, 5 req/s there.
        (0, "| prefix-aware | 2.5× | 5.00 |"),
        # Both requests meet the SLO; TTFT 0.25 s; TPOT 0.5 s / 10 gaps = 50 ms.
        (0, "| 100.0% | 0.250 / 0.250 | 50.0 / 50.0 |"),
        # 30 % hit ratio, half of the 60 % bound; busy 3 vs mean 2; 2 × 1.5 GB moved.
        (0, "| 30.0% | 50% | 1.50 | 3.00 |"),
        # Even the lowest probe (0.5×) missed: goodput is below it, in unknown req/s.
        (1, "| round-robin | < 0.5× | – | 0.0% |"),
        # No search run for this policy.
        (2, "| random | – | – | 100.0% |"),
    ],
)
def test_table_cells(row: int, cell: str) -> None:
    assert cell in comparison_table(ROWS, bound=0.6).splitlines()[2 + row]


def test_capped_goodput_says_at_least() -> None:
    rows: list[PolicyRow] = [("p", ROWS[0][1], search(Probe(64.0, 1.0, 128.0), is_capped=True))]
    # The highest allowed rate passed: the true goodput may be higher.
    assert "| p | ≥ 64× | 128.00 |" in comparison_table(rows, bound=None)


@pytest.mark.parametrize("bound", [None, 0.0])
def test_share_of_bound_is_missing_without_a_usable_bound(bound: float | None) -> None:
    row = comparison_table(ROWS[:1], bound=bound).splitlines()[2]
    # Hit ratio is shown, its share of an unknown (or zero) bound is not.
    assert "| 30.0% | – | 1.50 |" in row
    assert to_json(ROWS[:1], bound)["policies"][0]["prefix_hit_share_of_bound"] is None


def test_json_holds_the_same_numbers_and_survives_a_round_trip() -> None:
    document = to_json(ROWS, bound=0.6)
    reloaded = json.loads(json.dumps(document))
    assert reloaded["prefix_hit_bound"] == 0.6
    assert [p["policy"] for p in reloaded["policies"]] == ["prefix-aware", "round-robin", "random"]
    first = reloaded["policies"][0]
    assert first["metrics"]["slo_attainment"] == 1.0
    assert first["metrics"]["ttft"]["p99_s"] == pytest.approx(0.25)
    assert first["prefix_hit_share_of_bound"] == pytest.approx(0.5)
    assert first["goodput"]["best"] == {
        "rate_scale": 2.5,
        "slo_attainment": 0.95,
        "request_rate_per_s": 5.0,
        "is_upper_bound": False,
    }
    assert len(first["goodput"]["probes"]) == 2
    assert reloaded["policies"][1]["goodput"]["best"] is None
    assert reloaded["policies"][2]["goodput"] is None

"""plots: both figures are written as valid, non-empty PNG files."""

from __future__ import annotations

from pathlib import Path

import pytest

from triskel.simulator.goodput import GoodputResult, Probe
from triskel.simulator.metrics import SloTargets
from triskel.simulator.plots import plot_attainment_vs_rate, plot_ttft_cdf
from triskel.simulator.records import RequestRecord, RunResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    # Every PNG starts with this 8-byte signature, then the IHDR chunk.
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    assert len(data) > 1000


def search(*points: tuple[float, float]) -> GoodputResult:
    # Unsorted on purpose: probes come in search order, lines are drawn by rate.
    probes = tuple(Probe(rate, attainment, None) for rate, attainment in points)
    return GoodputResult(target=0.9, best=probes[0], is_capped=False, probes=probes)


def run(policy: str, ttfts_s: list[float | None]) -> RunResult:
    requests = [
        RequestRecord(
            index=i,
            arrival_s=0.0,
            num_input_tokens=10,
            num_output_tokens=2,
            first_token_s=ttft_s,
            finish_s=None if ttft_s is None else ttft_s + 0.1,
        )
        for i, ttft_s in enumerate(ttfts_s)
    ]
    return RunResult(policy=policy, rate_scale=1.0, requests=requests)


def test_attainment_vs_rate(tmp_path: Path) -> None:
    searches = {
        "prefix-aware": search((1.0, 1.0), (2.0, 0.95), (4.0, 0.5), (2.8, 0.91)),
        "round-robin": search((1.0, 0.95), (2.0, 0.4), (1.4, 0.7)),
    }
    path = plot_attainment_vs_rate(searches, target=0.9, path=tmp_path / "out" / "rate.png")
    # The missing parent folder was created.
    assert path == tmp_path / "out" / "rate.png"
    assert_png(path)


def test_attainment_vs_rate_with_probes_stopped_early(tmp_path: Path) -> None:
    # Stopped probes know only "at most 0.89": drawn apart from the exact ones.
    probes = (
        Probe(1.0, 0.97, None),
        Probe(2.0, 0.89, None, is_upper_bound=True),
        Probe(1.4, 0.93, None),
    )
    searches = {"p": GoodputResult(0.9, probes[2], is_capped=False, probes=probes)}
    assert_png(plot_attainment_vs_rate(searches, target=0.9, path=tmp_path / "rate.png"))


@pytest.mark.parametrize("slo", [None, SloTargets(ttft_s=0.5, tpot_s=0.1)])
def test_ttft_cdf(tmp_path: Path, slo: SloTargets | None) -> None:
    runs = {
        "a": run("a", [0.1, 0.3, 0.2, 0.9]),
        # A failed request: the line tops out at 2/3.
        "b": run("b", [0.4, None, 0.6]),
        # Nothing finished: an empty line, still a valid figure.
        "c": run("c", [None]),
    }
    assert_png(plot_ttft_cdf(runs, tmp_path / "ttft.png", slo=slo))

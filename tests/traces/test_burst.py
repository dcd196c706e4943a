"""Bursts over a trace: more of its own requests inside the windows, nothing outside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triskel.cli.main import app
from triskel.traces.burst import check_windows, real_time_s, with_burst, with_bursts
from triskel.traces.types import Trace, TraceRequest


def trace(count: int = 100, gap_s: float = 1.0) -> Trace:
    requests = tuple(TraceRequest(n * gap_s, 100 + n, 10 + n, (), 0, None, n) for n in range(count))
    return Trace("t", "test", requests)


def test_the_window_carries_factor_times_its_traffic() -> None:
    burst = with_burst(trace(), 20.0, 40.0, 3.0, seed=1)
    inside = [r for r in burst.requests if 20.0 <= r.arrival_s < 40.0]
    outside = [r for r in burst.requests if not 20.0 <= r.arrival_s < 40.0]
    assert len(inside) == 3 * 20  # an integer factor: exactly two copies each
    assert len(outside) == 80
    # Copies keep their original's lengths: the window's own mix.
    assert sorted(r.num_input_tokens for r in inside) == sorted([120 + n for n in range(20)] * 3)
    # Re-indexed in arrival order (a Trace refuses requests out of order).
    assert [r.index for r in burst.requests] == list(range(140))


def test_a_fractional_factor_is_met_on_average_and_a_seed_replays() -> None:
    one = with_burst(trace(1000, 0.1), 0.0, 100.0, 1.5, seed=7)
    assert 1400 <= one.num_requests <= 1600
    assert one == with_burst(trace(1000, 0.1), 0.0, 100.0, 1.5, seed=7)


@pytest.mark.parametrize(
    ("start", "end", "factor", "message"),
    [(10.0, 5.0, 2.0, "start"), (-1.0, 5.0, 2.0, "start"), (0.0, 5.0, 0.5, "factor")],
)
def test_a_bad_burst_is_refused_naming_what(
    start: float, end: float, factor: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        with_burst(trace(), start, end, factor)


def test_several_windows_each_carry_their_own_factor() -> None:
    bursts = with_bursts(trace(), [(60.0, 70.0, 2.0), (10.0, 30.0, 3.0)], seed=2)
    arrivals = [r.arrival_s for r in bursts.requests]
    assert sum(1 for a in arrivals if 10.0 <= a < 30.0) == 3 * 20
    assert sum(1 for a in arrivals if 60.0 <= a < 70.0) == 2 * 10
    assert sum(1 for a in arrivals if 30.0 <= a < 60.0 or a < 10.0 or a >= 70.0) == 70
    assert bursts.name == "t+burst3x@10-30s+burst2x@60-70s"
    # One window is the single burst, copy for copy.
    assert with_bursts(trace(), [(20.0, 40.0, 1.5)], seed=3) == with_burst(
        trace(), 20.0, 40.0, 1.5, seed=3
    )


def test_overlapping_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="must not overlap; one ends at 30 after the next"):
        with_bursts(trace(), [(10.0, 30.0, 2.0), (25.0, 40.0, 2.0)])
    # Touching windows are fine: [10, 30) then [30, 40).
    with_bursts(trace(), [(10.0, 30.0, 2.0), (30.0, 40.0, 2.0)])


@pytest.mark.parametrize(
    ("operational_s", "real_s"),
    [
        (5.0, 5.0),  # before the first window: the clocks agree
        (10.0, 10.0),  # its start
        (25.0, 15.0),  # inside (10, 20, 3): 15 operational seconds are 5 real ones
        (40.0, 20.0),  # its end: 10 real seconds showed 30 operational ones
        (45.0, 25.0),  # between the windows: 1x again, 20 s behind
        (60.0, 40.0),  # the second window (40, 50, 2) starts at operational 60
        (70.0, 45.0),  # inside it: 10 operational seconds are 5 real ones
        (90.0, 60.0),  # after both: 20 + 10 seconds behind
    ],
)
def test_the_burst_clock_runs_factor_times_faster_inside_windows(
    operational_s: float, real_s: float
) -> None:
    windows = check_windows([(40.0, 50.0, 2.0), (10.0, 20.0, 3.0)])
    assert real_time_s(operational_s, windows) == pytest.approx(real_s)
    assert real_time_s(operational_s, []) == operational_s


SAMPLE = str(Path(__file__).resolve().parents[1] / "data" / "traces" / "azure_conv_head200.csv")


def test_the_simulate_command_takes_several_bursts(tmp_path: Path) -> None:
    out = tmp_path / "bursts.json"
    windows = ["10,20,2", "40,50,3"]
    flags = [arg for window in windows for arg in ("--burst", window)]
    result = CliRunner().invoke(
        app,
        ["simulate", "--trace", SAMPLE, "--autoscale", "triskel", *flags, "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "attainment in the bursts" in result.output
    document = json.loads(out.read_text())
    assert document["trace"].endswith("+burst2x@10-20s+burst3x@40-50s")
    assert all(p["burst_attainment"] is not None for p in document["policies"])


@pytest.mark.parametrize(
    ("bursts", "message"),
    [
        (["10,30,2", "20,40,2"], "--burst: windows must not overlap"),
        (["10,inf,2"], "--burst: START, END and FACTOR must be finite"),
        (["10,20,0.5"], "--burst: factor must be >= 1, got 0.5"),
        (["10,20"], "--burst: expected START,END,FACTOR, got '10,20'"),
    ],
)
def test_bad_bursts_on_the_command_line_name_the_flag(bursts: list[str], message: str) -> None:
    flags = [arg for window in bursts for arg in ("--burst", window)]
    result = CliRunner().invoke(
        app, ["simulate", "--trace", SAMPLE, "--autoscale", "triskel", *flags]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output

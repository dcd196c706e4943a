"""`triskel simulate --suite`: a small suite end to end, its outputs and its flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from triskel.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "data" / "traces"


def tiny_suite(tmp_path: Path) -> Path:
    """2 workloads × 2 policies on 2 + 2 instances, a few hundred requests in all."""
    (tmp_path / "chat.yaml").write_text(
        yaml.safe_dump(
            {
                "seed": 4,
                "spec": {
                    "ratePerS": 6,
                    "numRequests": 160,
                    "inputTokensMean": 700,
                    "outputTokensMean": 40,
                    "numPrefixes": 2,
                    "prefixBlocks": 2,
                    "turnsMean": 3,
                    "thinkTimeMeanS": 5,
                },
            }
        )
    )
    suite = {
        "cluster": {"numPrefill": 2, "numDecode": 2},
        "slo": {"ttftMs": 2000, "tpotMs": 100},
        # A coarse search: few probes keep the test fast.
        "goodput": {"low": 1, "high": 8, "tolerance": 0.5},
        "policies": {
            "subject": str(ROOT / "bench" / "policies" / "triskel.yaml"),
            "peers": [str(ROOT / "bench" / "policies" / "least-load.yaml")],
        },
        "workloads": [
            {
                "name": "mooncake",
                "trace": str(SAMPLES / "mooncake_conversation_head200.jsonl"),
                "limit": 120,
            },
            {"name": "chat", "trace": "synthetic:chat.yaml"},
        ],
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_a_suite_runs_every_workload_and_policy_into_one_table(tmp_path: Path) -> None:
    out = tmp_path / "out" / "suite.json"
    plots = tmp_path / "img"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--suite",
            str(tiny_suite(tmp_path)),
            "--json",
            str(out),
            "--plot",
            str(plots),
        ],
    )
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("| Workload |") :].splitlines()
    assert table[0] == (
        "| Workload | Requests | round-robin | least-load | triskel | Best peer"
        " | triskel ÷ best peer | triskel ÷ round-robin |"
    )
    assert table[2].startswith("| mooncake | 120 | ")
    assert table[3].startswith("| chat | 160 | ")
    assert table[4].startswith("| **Geometric mean** |")
    document = json.loads(out.read_text())
    assert [w["workload"] for w in document["workloads"]] == ["mooncake", "chat"]
    assert document["table"]["peers"] == ["least-load"]
    for workload, row in zip(document["workloads"], document["table"]["workloads"], strict=True):
        # Each policy's goodput in the table is its search's answer in the details.
        for policy in workload["policies"]:
            best = policy["goodput"]["best"]
            shown = row["goodput"][policy["policy"]]
            if best is not None:
                assert shown["value"] == best["rate_scale"]
        assert workload["cluster"]["num_prefill"] == 2
    assert (plots / "suite_goodput.png").stat().st_size > 0


def test_a_limit_on_the_command_line_caps_every_workload(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--suite", str(tiny_suite(tmp_path)), "--limit", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "| mooncake | 30 | " in result.output and "| chat | 30 | " in result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--trace", "x.jsonl"],
            "--suite: the file sets traces, policies, clusters and SLOs; drop --trace",
        ),
        (["--prefill", "4", "--goodput"], "drop --prefill, --goodput"),
    ],
)
def test_flags_the_suite_file_sets_are_refused(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["simulate", "--suite", str(tiny_suite(tmp_path)), *flags])
    assert result.exit_code == 2
    assert message in result.output


def test_a_bad_suite_is_one_line_naming_the_field(tmp_path: Path) -> None:
    path = tiny_suite(tmp_path)
    document = yaml.safe_load(path.read_text())
    document["workloads"][1]["limit"] = -1
    path.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(app, ["simulate", "--suite", str(path)])
    assert result.exit_code == 2
    assert f"{path}: workloads.1.limit: Input should be greater than or equal to 1" in result.output
    assert "Traceback" not in result.output


def test_without_a_trace_or_a_suite_simulate_says_what_it_needs() -> None:
    result = CliRunner().invoke(app, ["simulate"])
    assert result.exit_code == 2
    assert "--trace: required (or --suite FILE)" in result.output

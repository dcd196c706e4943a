"""`triskel simulate`: policies from files, one table for several policies, JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triskel.cli.main import app
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.command import (
    SimulateError,
    SimulateOptions,
    load_policy,
    run_simulate,
)
from triskel.simulator.metrics import SloTargets
from triskel.traces import SyntheticSpec, Trace, synthetic_trace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "traces"


def small_trace() -> Trace:
    spec = SyntheticSpec.model_validate(
        {
            "ratePerS": 4,
            "numRequests": 24,
            "inputTokensMean": 256,
            "outputTokensMean": 16,
            "numPrefixes": 2,
            "prefixBlocks": 2,
        }
    )
    return synthetic_trace(spec, seed=1)


def test_policies_load_from_up_files_bare_sections_or_by_name(tmp_path: Path) -> None:
    assert load_policy("round-robin").routing.profiles == []
    dualmap = load_policy(str(EXAMPLES / "dualmap.yaml"))  # a whole `triskel up` file
    assert dualmap.name == "dualmap" and dualmap.routing.profiles
    bare = tmp_path / "least.yaml"
    bare.write_text(
        "plugins: [{type: least-load-scorer}, {type: max-score-picker}]\n"
        "profiles: [{name: unified, plugins: [{pluginRef: least-load-scorer},"
        " {pluginRef: max-score-picker}]}]\n"
    )
    assert load_policy(str(bare)).name == "least"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read"),
        ("plugins: [", "not valid YAML"),
        ("[1, 2]", "expected a mapping"),
        # The field is named: a profile pointing at a plugin that is not defined.
        ("profiles: [{name: unified, plugins: [{pluginRef: nope}]}]", "routing"),
    ],
)
def test_a_bad_policy_file_is_refused_naming_it(
    tmp_path: Path, content: str | None, fragment: str
) -> None:
    path = tmp_path / "policy.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SimulateError, match=fragment) as raised:
        load_policy(str(path))
    assert str(path) in str(raised.value)


def test_several_policies_share_one_table_and_json(tmp_path: Path) -> None:
    lines: list[str] = []
    options = SimulateOptions(
        trace=small_trace(),
        shape=ClusterShape(num_unified=2),
        slo=SloTargets(ttft_s=2.0, tpot_s=0.1),
        policies=[load_policy("round-robin"), load_policy(str(EXAMPLES / "dualmap.yaml"))],
        json_path=tmp_path / "results.json",
        plot_dir=tmp_path / "plots",
    )
    rows = run_simulate(options, lines.append)
    assert [name for name, _, _ in rows] == ["round-robin", "dualmap"]
    table = "\n".join(lines)
    assert "| round-robin |" in table and "| dualmap |" in table
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["seed"] == 0 and len(json.dumps(document)) > 100
    assert (tmp_path / "plots" / "ttft_cdf.png").stat().st_size > 0


def test_the_command_refuses_a_bad_trace_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 0, "input_length": -3, "output_length": 5, "hash_ids": []}\n')
    result = CliRunner().invoke(app, ["simulate", "--trace", str(bad), "--unified", "1"])
    assert result.exit_code == 2
    assert "bad.jsonl:1" in result.output and "input_length" in result.output


def test_the_command_runs_a_small_slice_of_the_mooncake_sample() -> None:
    trace = str(SAMPLE / "mooncake_conversation_head200.jsonl")
    result = CliRunner().invoke(
        app,
        ["simulate", "--trace", trace, "--limit", "20", "--prefill", "1", "--decode", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "| round-robin |" in result.output and "prefix-hit bound" in result.output


def test_compare_runs_its_policies_in_parallel_processes_with_the_same_results() -> None:
    trace = str(SAMPLE / "mooncake_conversation_head200.jsonl")
    policies = f"round-robin,{EXAMPLES / 'dualmap.yaml'}"
    common = ["simulate", "--trace", trace, "--limit", "12", "--prefill", "1", "--decode", "1"]
    serial = CliRunner().invoke(app, [*common, "--compare", policies])
    parallel = CliRunner().invoke(app, [*common, "--compare", policies, "--jobs", "2"])
    assert serial.exit_code == 0 and parallel.exit_code == 0, serial.output + parallel.output

    def table(output: str) -> list[str]:
        return [line for line in output.splitlines() if line.startswith("|")]

    assert len(table(serial.output)) == 4  # header, rule, two policies
    assert table(serial.output) == table(parallel.output)


def test_two_policies_with_one_name_are_refused() -> None:
    trace = str(SAMPLE / "mooncake_conversation_head200.jsonl")
    result = CliRunner().invoke(
        app,
        ["simulate", "--trace", trace, "--compare", "round-robin,round-robin", "--unified", "1"],
    )
    assert result.exit_code == 2
    assert "share a name" in result.output


def test_an_unknown_profile_is_refused_naming_the_known_ones() -> None:
    trace = str(SAMPLE / "mooncake_conversation_head200.jsonl")
    result = CliRunner().invoke(app, ["simulate", "--trace", trace, "--profile", "nope"])
    assert result.exit_code == 2
    assert "nope" in result.output and "llama-3.1-8b-h100" in result.output


def test_load_reports_lag_by_default_and_the_flag_turns_the_lag_off() -> None:
    """The runs differ: with the router's 50 ms reports, picks between two reports read
    the same numbers; with 0 they read each engine at the pick."""
    trace = str(SAMPLE / "mooncake_conversation_head200.jsonl")
    policy = str(EXAMPLES.parent / "bench" / "policies" / "llm-d.yaml")
    tables = []
    for extra in ([], ["--load-report-ms", "0"]):
        result = CliRunner().invoke(
            app,
            [
                "simulate",
                "--trace",
                trace,
                "--limit",
                "200",
                "--unified",
                "4",
                "--policy",
                policy,
                "--rate-scale",
                "4",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        tables.append([line for line in result.output.splitlines() if line.startswith("| llm-d")])
    assert tables[0] and tables[0] != tables[1]

"""Suite files: what they resolve to, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from triskel.simulator.suite_config import SuiteError, SuiteFile, load_suite

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "bench" / "policies"
SAMPLES = ROOT / "tests" / "data" / "traces"


def suite_document(tmp_path: Path) -> dict[str, Any]:
    # A synthetic spec next to the suite, named relative to it.
    (tmp_path / "shapes").mkdir(exist_ok=True)
    (tmp_path / "shapes" / "chat.yaml").write_text(
        "seed: 3\nspec: {ratePerS: 4, numRequests: 20, inputTokensMean: 128}\n"
    )
    return {
        "seed": 5,
        "cluster": {"numPrefill": 2, "numDecode": 2},
        "slo": {"ttftMs": 5000, "tpotMs": 100},
        "policies": {
            "subject": str(POLICIES / "triskel.yaml"),
            "peers": [str(POLICIES / "llm-d.yaml"), str(POLICIES / "dynamo.yaml")],
        },
        "workloads": [
            {"name": "mooncake", "trace": str(SAMPLES / "mooncake_conversation_head200.jsonl")},
            {
                "name": "chat",
                "trace": "synthetic:shapes/chat.yaml",
                "limit": 10,
                "cluster": {"numUnified": 3, "loadReportIntervalMs": 0},
                "slo": {"ttftMs": 1000, "tpotMs": 50, "attainment": 0.95},
                "goodput": {"start": 4, "low": 2, "high": 16, "tolerance": 0.1},
            },
        ],
    }


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_suite_resolves_policies_workloads_and_their_overrides(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, suite_document(tmp_path)))
    # The table reads baseline (round-robin by default), peers, then the subject.
    assert [p.name for p in suite.policies] == ["round-robin", "llm-d", "dynamo", "triskel"]
    mooncake, chat = suite.workloads
    # The first takes the suite's cluster, SLO and search.
    assert (mooncake.shape.num_prefill, mooncake.shape.num_decode) == (2, 2)
    assert (mooncake.slo.ttft_s, mooncake.slo.tpot_s, mooncake.slo.attainment_target) == (
        5.0,
        0.1,
        0.9,
    )
    # The file's defaults: from the workload's own rate, down to 1/16, up to 64.
    search = mooncake.search
    assert (search.start, search.low, search.high, search.tolerance) == (1, 0.0625, 64, 0.05)
    assert mooncake.limit is None
    # The second sets its own; its synthetic spec is named relative to the suite file.
    assert chat.trace == f"synthetic:{tmp_path / 'shapes' / 'chat.yaml'}"
    assert chat.shape.num_unified == 3 and chat.limit == 10
    # Workers report their load every 50 ms, as the router asks them; 0: no lag.
    assert mooncake.shape.load_report_interval_ms == 50
    assert chat.shape.load_report_interval_ms == 0
    assert (chat.slo.ttft_s, chat.slo.tpot_s, chat.slo.attainment_target) == (1.0, 0.05, 0.95)
    assert (chat.search.start, chat.search.low, chat.search.high) == (4, 2, 16)
    assert chat.search.tolerance == 0.1
    assert suite.seed == 5


def nested_set(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value


DELETE = object()


@pytest.mark.parametrize(
    ("dotted", "value", "field", "problem"),
    [
        ("workloads.1.limit", 0, "workloads.1.limit", "greater than or equal to 1"),
        ("workloads.0.rate", 3, "workloads.0.rate", "Extra inputs are not permitted"),
        ("workloads.1.name", "Chat Shape", "workloads.1.name", "should match pattern"),
        ("policies.peers", [], "policies.peers", "at least 1 item"),
        ("slo.ttftMs", DELETE, "slo.ttftMs", "Field required"),
        ("slo.attainment", 1.5, "slo.attainment", "less than or equal to 1"),
        ("goodput", {"low": 8, "high": 4}, "goodput", "need low <= start <= high, got 8, 1, 4"),
        ("goodput", {"start": 0.5, "low": 1}, "goodput", "need low <= start <= high, got 1, 0.5"),
        ("workloads.1.name", "mooncake", None, "workload names must be unique; repeated: mooncake"),
        ("workloads", [], "workloads", "at least 1 item"),
        ("workloads.0.trace", "missing.jsonl", "workloads.0.trace", "missing.jsonl: no such file"),
        (
            "workloads.1.trace",
            "synthetic:nope.yaml",
            "workloads.1.trace",
            "nope.yaml: no such file",
        ),
        ("workloads.1.trace", "synthetic:suite.yaml", "workloads.1.trace", "spec: Field required"),
        ("cluster", {"numPrefill": 2}, "cluster", "a disaggregated cluster needs both roles"),
        (
            "workloads.1.cluster",
            {"numUnified": 1, "profile": "h200"},
            "workloads.1.cluster",
            "unknown profile",
        ),
        ("policies.peers.1", "nope.yaml", "policies.peers.1", "nope.yaml: cannot read"),
        (
            "policies.baseline",
            str(POLICIES / "llm-d.yaml"),
            "policies",
            "two policies share a name",
        ),
    ],
)
def test_a_bad_suite_names_the_file_and_the_field(
    tmp_path: Path, dotted: str, value: Any, field: str | None, problem: str
) -> None:
    document = suite_document(tmp_path)
    nested_set(document, dotted, value)
    path = write(tmp_path, document)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    error = caught.value
    assert error.field == field
    assert problem in error.problem
    assert str(error).startswith(f"{path}: ")


def test_a_policy_file_with_a_bad_field_says_which(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing: {disaggregation: {mode: sometimes}}\n")
    document = suite_document(tmp_path)
    document["policies"]["subject"] = "bad.yaml"
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, document))
    assert caught.value.field == "policies.subject"
    assert caught.value.problem.startswith("bad.yaml: routing.disaggregation.mode:")


@pytest.mark.parametrize(("text", "problem"), [("a: [1", "not valid YAML"), (None, "cannot read")])
def test_an_unreadable_suite_is_one_line(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / "suite.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SuiteError, match=problem) as caught:
        load_suite(path)
    assert caught.value.field is None


def test_the_shipped_suite_is_valid_and_names_every_peer_once() -> None:
    # The traces it names live outside the repository (../shared/traces), so this checks
    # the file's fields and its own shapes; `load_suite` checks the rest at run time.
    path = ROOT / "bench" / "suite.yaml"
    file = SuiteFile.model_validate(yaml.safe_load(path.read_text()))
    peers = {Path(p).stem for p in file.policies.peers}
    assert Path(file.policies.subject).stem == "triskel"
    assert file.policies.baseline == "round-robin"
    assert peers == {"least-load", "llm-d", "dynamo", "sglang", "dualmap"}
    for spec in (file.policies.subject, *file.policies.peers):
        assert (path.parent / spec).is_file(), spec
    synthetic = [w for w in file.workloads if w.trace.startswith("synthetic:")]
    assert {w.name for w in synthetic} >= {"rag-long-context", "chat-short", "agent-sessions"}
    for workload in synthetic:
        assert (path.parent / workload.trace.removeprefix("synthetic:")).is_file()

"""load_trace: dispatch by suffix or `synthetic:`, and errors naming the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from triskel.traces.errors import TraceError
from triskel.traces.loading import load_trace

from support.real_traces import AZURE_CONVERSATION, MOONCAKE_CONVERSATION, require

SPEC_YAML = """\
seed: 3
spec:
  arrival: gamma
  ratePerS: 5
  numRequests: 50
  numPrefixes: 4
  turnsMean: 2
"""


def test_real_files_dispatch_by_suffix() -> None:
    mooncake = load_trace(str(require(MOONCAKE_CONVERSATION)), limit=5)
    azure = load_trace(str(require(AZURE_CONVERSATION)), limit=5)
    assert mooncake.requests[0].prefix_block_tokens == 512  # only Mooncake has prefixes
    assert azure.requests[0].prefix_block_tokens == 0
    assert (mooncake.num_requests, azure.num_requests) == (5, 5)


def test_synthetic_spec_file_is_seeded_and_limited(tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text(SPEC_YAML)
    trace = load_trace(f"synthetic:{path}")
    assert (trace.name, trace.source, trace.num_requests) == ("chat", f"synthetic:{path}", 50)
    assert load_trace(f"synthetic:{path}") == trace  # the seed in the file pins it
    assert load_trace(f"synthetic:{path}", limit=10).requests == trace.requests[:10]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SPEC_YAML.replace("ratePerS: 5", "ratePerS: -5"), "spec.ratePerS: Input should be"),
        (SPEC_YAML.replace("ratePerS", "rateHz"), "spec.ratePerS: Field required"),
        (SPEC_YAML + "  thinkTime: 3\n", "spec.thinkTime: Extra inputs"),
        (SPEC_YAML.replace("seed: 3", "seed: many"), "seed: Input should be a valid integer"),
        ("spec: [unclosed\n", "chat.yaml:2: invalid YAML"),
    ],
)
def test_bad_synthetic_files_name_path_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text(text)
    with pytest.raises(TraceError) as caught:
        load_trace(f"synthetic:{path}")
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("trace.parquet", "unknown trace kind"),
        ("trace", "unknown trace kind"),
        ("synthetic:missing.yaml", "synthetic spec file not found"),
    ],
)
def test_unknown_or_missing_sources_name_the_path(source: str, problem: str) -> None:
    path = source.removeprefix("synthetic:")
    with pytest.raises(TraceError, match=rf"^{path}: {problem}"):
        load_trace(source)


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.csv"])
def test_a_missing_file_is_a_trace_error_naming_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(TraceError, match="cannot read") as raised:
        load_trace(str(path))
    assert raised.value.path == str(path)

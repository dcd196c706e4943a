"""NOTES.txt renders and tells the user the next commands.

`helm template` skips NOTES.txt and `helm install --dry-run` needs a cluster, so the
notes live in the `triskel.notes` template and a probe template in a copy of the chart
renders them into a ConfigMap.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helm import CHART, NAMESPACE, ROOT, find, render

PROBE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: notes-probe
data:
  notes: {{ include "triskel.notes" . | quote }}
"""


@pytest.fixture(scope="module")
def probe_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = tmp_path_factory.mktemp("chart") / "triskel"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "notes-probe.yaml").write_text(PROBE)
    return chart


def _notes(chart: Path, values: dict[str, Any] | None = None) -> str:
    notes: str = find(render(values, chart=chart), "ConfigMap", "notes-probe")["data"]["notes"]
    return notes


def test_notes_txt_renders_the_notes_template() -> None:
    assert (CHART / "templates" / "NOTES.txt").read_text().strip() == (
        '{{ include "triskel.notes" . }}'
    )


def test_notes_give_the_next_commands(probe_chart: Path) -> None:
    notes = _notes(probe_chart)
    assert "kubectl apply -f manifests/examples/pd-mock.yaml" in notes
    assert f"kubectl --namespace {NAMESPACE} port-forward svc/triskel-router 8080:8080" in notes
    assert "curl -s http://127.0.0.1:8080/v1/chat/completions" in notes
    assert "watching all namespaces" in notes
    assert "redis" not in notes


def test_notes_follow_the_values(probe_chart: Path) -> None:
    notes = _notes(
        probe_chart,
        {
            "operator": {"watchNamespaces": ["team-a", "team-b"]},
            "redis": {"enabled": True},
            "router": {"service": {"httpPort": 80}},
        },
    )
    assert "watching team-a, team-b" in notes
    assert "redis     service/triskel-redis" in notes
    assert "port-forward svc/triskel-router 8080:80" in notes


def test_notes_example_and_request_agree(probe_chart: Path) -> None:
    # The notes apply this example, then ask for its ServingGraph's model.
    example = ROOT / "manifests" / "examples" / "pd-mock.yaml"
    (graph,) = [d for d in yaml.safe_load_all(example.read_text()) if d["kind"] == "ServingGraph"]
    assert f'"model":"{graph["spec"]["model"]}"' in _notes(probe_chart)

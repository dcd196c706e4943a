"""`triskel crds`: print, --write, --check (what CI runs on the committed folders)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from triskel.cli.main import app

REPO = Path(__file__).resolve().parents[2]
COMMITTED = ["manifests/crds", "charts/triskel/crds"]


def test_prints_every_crd_as_one_yaml_stream() -> None:
    result = CliRunner().invoke(app, ["crds"])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["metadata"]["name"] for d in documents] == [
        "workerpools.triskel.io",
        "servinggraphs.triskel.io",
        "routingpolicies.triskel.io",
    ]
    assert {d["kind"] for d in documents} == {"CustomResourceDefinition"}


@pytest.mark.parametrize("folder", COMMITTED)
def test_check_passes_on_the_committed_folders(folder: str) -> None:
    result = CliRunner().invoke(app, ["crds", "--check", str(REPO / folder)])
    assert result.exit_code == 0, result.output


def test_check_fails_on_a_stale_copy_naming_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "crds"
    shutil.copytree(REPO / "manifests" / "crds", copy)
    stale = copy / "workerpools.triskel.io.yaml"
    stale.write_text(stale.read_text().replace("minimum: 0", "minimum: 1", 1))
    (copy / "routingpolicies.triskel.io.yaml").unlink()
    result = CliRunner().invoke(app, ["crds", "--check", str(copy)])
    assert result.exit_code != 0
    assert f"{copy}/workerpools.triskel.io.yaml: stale" in result.output
    assert f"{copy}/routingpolicies.triskel.io.yaml: missing" in result.output
    assert "servinggraphs" not in result.output


def test_write_then_check(tmp_path: Path) -> None:
    runner = CliRunner()
    written = runner.invoke(app, ["crds", "--write", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert written.output.count("wrote ") == 3
    assert runner.invoke(app, ["crds", "--check", str(tmp_path)]).exit_code == 0


def test_write_and_check_together_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["crds", "--write", str(tmp_path), "--check", str(tmp_path)])
    assert result.exit_code == 2
    assert "pick one" in result.output

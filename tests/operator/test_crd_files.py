from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from triskel.operator.crd_files import (
    HEADER,
    check_folder,
    generated_files,
    render_all,
    write_folder,
)
from triskel.operator.crds import build_crds

REPO = Path(__file__).resolve().parents[2]
COMMITTED = [REPO / "manifests" / "crds", REPO / "charts" / "triskel" / "crds"]
NAMES = [
    "workerpools.triskel.io.yaml",
    "servinggraphs.triskel.io.yaml",
    "routingpolicies.triskel.io.yaml",
]


def test_the_stream_parses_back_to_the_built_crds() -> None:
    assert list(yaml.safe_load_all(render_all())) == build_crds()


def test_one_file_per_crd_named_after_it_marked_generated() -> None:
    files = generated_files()
    assert list(files) == NAMES
    for name, text in files.items():
        assert text.startswith(HEADER)
        assert yaml.safe_load(text)["metadata"]["name"] + ".yaml" == name


def test_multi_line_descriptions_read_as_blocks() -> None:
    # ReplicasSpec's docstring has two paragraphs; quoted YAML would escape them.
    assert "description: |-\n" in generated_files()["workerpools.triskel.io.yaml"]


@pytest.mark.parametrize("folder", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_files_equal_the_generator_output(folder: Path) -> None:
    assert sorted(p.name for p in folder.glob("*.yaml")) == sorted(NAMES)
    for name, text in generated_files().items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{folder}/{name} is stale"
    assert check_folder(folder).is_current


def test_check_names_stale_missing_and_leftover_files(tmp_path: Path) -> None:
    write_folder(tmp_path)
    assert check_folder(tmp_path).is_current
    stale = tmp_path / "servinggraphs.triskel.io.yaml"
    stale.write_text(stale.read_text() + "# hand edit\n")
    (tmp_path / "routingpolicies.triskel.io.yaml").unlink()
    (tmp_path / "oldkinds.triskel.io.yaml").write_text("kind: CustomResourceDefinition\n")
    drift = check_folder(tmp_path)
    assert drift.stale == ("servinggraphs.triskel.io.yaml",)
    assert drift.missing == ("routingpolicies.triskel.io.yaml",)
    assert drift.unexpected == ("oldkinds.triskel.io.yaml",)
    assert f"{tmp_path}/servinggraphs.triskel.io.yaml: stale" in drift.describe(tmp_path)


def test_write_replaces_our_files_and_leaves_others_alone(tmp_path: Path) -> None:
    (tmp_path / "oldkinds.triskel.io.yaml").write_text("stale\n")
    (tmp_path / "README.md").write_text("not ours\n")
    written = write_folder(tmp_path / ".")
    assert [p.name for p in written] == NAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*NAMES, "README.md"])
    assert check_folder(tmp_path).is_current


def test_a_missing_folder_is_all_missing(tmp_path: Path) -> None:
    assert check_folder(tmp_path / "nowhere").missing == tuple(sorted(NAMES))

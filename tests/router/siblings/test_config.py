"""A process's place among its siblings: below the count, and sockets named by index."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from triskel.router.siblings import SiblingsConfig


def test_places_and_sockets(tmp_path: Path) -> None:
    config = SiblingsConfig(index=1, count=3, directory=tmp_path)
    assert config.others == [0, 2]
    assert config.socket_of(2) == tmp_path / "2.sock"


@pytest.mark.parametrize(
    ("index", "count", "message"),
    [(2, 2, "index: 2 is not below count"), (0, 1, "count"), (0, 257, "count")],
)
def test_out_of_place_is_refused(tmp_path: Path, index: int, count: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SiblingsConfig(index=index, count=count, directory=tmp_path)

"""The packaged embedding model, loaded once for every router test that reads it (~0.2 s)."""

from __future__ import annotations

import pytest

from triskel.router.semantic.embedding import Embedder, load_embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder()

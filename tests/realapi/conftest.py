"""Fixtures of the `realapi` layer: one hybrid API server per session, a namespace per test.

The rigs are built (~7 min, once) at collection time when a realapi test is selected,
outside any test's timeout; CI builds them in `.ci/run` before the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support.kube_rig import RealApi, ensure_built, start_hybrid


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("realapi") for item in items):
        ensure_built()


@pytest.fixture(scope="session")
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealApi]:
    with start_hybrid(tmp_path_factory.mktemp("hybrid")) as api:
        yield api


@pytest.fixture
def namespace(real_api: RealApi) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    real_api.kubectl("create", "namespace", name)
    yield name
    # Not waited for: a namespace goes once its objects' finalizers ran.
    real_api.kubectl("delete", "namespace", name, "--wait=false", check=False)

"""Fixtures of the `realapi` layer: one hybrid API server per session, a namespace per test.

Building the rigs takes ~8 minutes (once; `.ci/run` does it before the tests), longer
than any test may run (pytest-timeout), so it happens here at the end of collection,
only when a selected test is marked `realapi`. A failed build fails every realapi test
with the script's reason; it never skips them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.kube_rig import RIG_DIR, RealApi, build_rigs, missing_binaries, start_hybrid

HERE = Path(__file__).parent
BUILD_FAILURE = pytest.StashKey[str]()


def pytest_collection_finish(session: pytest.Session) -> None:
    # After -m / -k deselection: `pytest -m "not realapi"` builds nothing.
    selected = [item for item in session.items if item.path.is_relative_to(HERE)]
    unmarked = [item.nodeid for item in selected if not item.get_closest_marker("realapi")]
    if unmarked:
        # Unmarked, they would run without the build and escape `-m "not realapi"`.
        raise pytest.UsageError(f"tests in tests/realapi need pytestmark = realapi: {unmarked}")
    if not selected or session.config.option.collectonly or not missing_binaries():
        return
    log = RIG_DIR / "build.log"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"building the kube-rig API servers into {RIG_DIR} (~8 min, once; log: {log})"
        )
    failure = build_rigs(log)
    if failure is not None:
        session.config.stash[BUILD_FAILURE] = failure


@pytest.fixture(scope="session")
def real_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealApi]:
    failure = request.config.stash.get(BUILD_FAILURE, None)
    if failure is not None:
        pytest.fail(f"building the kube-rig API servers failed: {failure}", pytrace=False)
    if missing := missing_binaries():
        pytest.fail(f"kube-rig binaries missing from {RIG_DIR}: {missing}", pytrace=False)
    with start_hybrid(tmp_path_factory.mktemp("hybrid")) as api:
        yield api


@pytest.fixture
def namespace(real_api: RealApi) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    real_api.kubectl("create", "namespace", name)
    yield name
    # Not waited for: a namespace goes once its objects' finalizers ran.
    real_api.kubectl("delete", "namespace", name, "--wait=false", check=False)

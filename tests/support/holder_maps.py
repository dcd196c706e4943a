"""Both holder maps, for tests that must hold for each (holders.py)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from triskel.router.scheduling.producers.holders import HolderMap, NativeHolderMap, PyHolderMap

HolderMapFactory = Callable[[], HolderMap]

# CI sets TRISKEL_REQUIRE_COMPILED=1: there the compiled map must have been built, and
# a test of it is never skipped.
_REQUIRED = os.environ.get("TRISKEL_REQUIRE_COMPILED") == "1"


def compiled_map() -> NativeHolderMap:
    """A new compiled map (the test is skipped where it was not built, outside CI)."""
    if NativeHolderMap is None:
        if _REQUIRED:
            raise AssertionError("the compiled holder map was not built")
        pytest.skip("the compiled holder map was not built (no C compiler at install)")
    return NativeHolderMap()


HOLDER_MAPS = [
    pytest.param(PyHolderMap, id="python"),
    pytest.param(compiled_map, id="compiled"),
]

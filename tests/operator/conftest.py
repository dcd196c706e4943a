"""The emulated API server the operator's kmock tests run against."""

from __future__ import annotations

import kmock
import pytest

from support.kube_emulator import declare_resources


@pytest.fixture
def server(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    """kmock (of the class a test's `kmock` mark names) serving the operator's kinds."""
    declare_resources(kmock)
    return kmock

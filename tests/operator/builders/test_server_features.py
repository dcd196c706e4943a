"""The server's /version decides which fields the builders may use."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.operator.builders.server_features import ServerFeatures, ServerVersionError


@pytest.mark.parametrize(
    ("version", "minor"),
    [
        ({"major": "1", "minor": "20", "gitVersion": "v1.20.2"}, 20),
        # Managed clusters (EKS, GKE) append "+" to the minor version.
        ({"major": "1", "minor": "30+", "gitVersion": "v1.30.4-eks-a737599"}, 30),
        ({"major": "1", "minor": "36"}, 36),
    ],
)
def test_minor_version_from_the_servers_answer(version: dict[str, Any], minor: int) -> None:
    assert ServerFeatures.from_version(version) == ServerFeatures(minor)


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ({"major": "1", "minor": "19"}, "older than the oldest supported, 1.20"),
        ({"major": "1"}, "minor is None, not a number"),
        ({}, "major is None, not a number"),
    ],
)
def test_unsupported_or_unreadable_versions_are_refused(
    version: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ServerVersionError, match=fragment):
        ServerFeatures.from_version(version)


@pytest.mark.parametrize(
    ("minor", "pdb", "grpc", "sleep"),
    [
        (20, "policy/v1beta1", False, False),
        (21, "policy/v1", False, False),  # policy/v1 PodDisruptionBudget: 1.21
        (24, "policy/v1", True, False),  # gRPC probes on by default: 1.24
        (30, "policy/v1", True, True),  # preStop sleep on by default: 1.30
    ],
)
def test_each_field_from_the_release_that_turned_it_on(
    minor: int, pdb: str, grpc: bool, sleep: bool
) -> None:
    features = ServerFeatures(minor)
    assert (features.pdb_api_version, features.has_grpc_probes, features.has_pre_stop_sleep) == (
        pdb,
        grpc,
        sleep,
    )

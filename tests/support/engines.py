"""Mock engines built exactly as `triskel worker` builds them, sized for tests."""

from __future__ import annotations

from triskel.common.api import Role, WorkerPoolSpec
from triskel.workers.mock_engine import MockEngine
from triskel.workers.process import WorkerProcessConfig, build_mock_engine


def mock_engine(
    role: Role, worker_id: str, *, connector: str = "tcp", capacity_tokens: int = 8192
) -> MockEngine:
    # time_scale 0: every modelled step completes at once, so tests run at CPU speed.
    pool = WorkerPoolSpec.model_validate(
        {
            "role": role,
            "model": "m",
            "kvConnector": {"type": connector},
            "profile": {"kvCapacityTokens": capacity_tokens, "timeScale": 0},
        }
    )
    return build_mock_engine(WorkerProcessConfig(worker_id=worker_id, pool=pool))

"""The supervisor: children started and stopped one at a time, and the restart backoff."""

from __future__ import annotations

import pytest

from triskel.cli.local_worker import worker_config
from triskel.cli.supervisor import ChildFailedError, RestartBackoff, Supervisor
from triskel.cli.up_config import PoolEntry
from triskel.common.worker_load import worker_load

POOL = PoolEntry.model_validate(
    {
        "name": "uni",
        "role": "unified",
        "model": "m",
        "profile": {"kvCapacityTokens": 4096, "timeScale": 0.01},
    }
)


@pytest.mark.parametrize(
    ("failures", "delay_s"),
    [
        (1, 0.5),  # the first failure waits the initial delay
        (2, 1.0),  # each further one in a row doubles it
        (4, 4.0),
        (7, 30.0),  # 0.5 × 2⁶ = 32 is over the 30 s ceiling
        (10_000, 30.0),  # a long crash loop stays at the ceiling (no float overflow)
    ],
)
def test_the_delay_doubles_with_each_failure_in_a_row_up_to_the_ceiling(
    failures: int, delay_s: float
) -> None:
    assert RestartBackoff(initial_s=0.5, max_s=30.0).delay_s(failures) == delay_s


@pytest.mark.parametrize(
    ("failures", "served_s", "expected"),
    [
        (0, 0.0, 1),  # the first death
        (3, 5.0, 4),  # died soon after its start: one more in a row
        (3, 60.0, 1),  # served a healthy while: the count starts again
    ],
)
def test_a_child_that_served_long_enough_starts_the_count_again(
    failures: int, served_s: float, expected: int
) -> None:
    backoff = RestartBackoff(healthy_after_s=60.0)
    assert backoff.failures_after(failures, served_s) == expected


def test_a_backoff_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="initial_s"):
        RestartBackoff(initial_s=0.0)
    with pytest.raises(ValueError, match="initial_s"):
        RestartBackoff(initial_s=5.0, max_s=1.0)


@pytest.mark.asyncio
async def test_one_child_stops_while_the_other_keeps_serving() -> None:
    supervisor = Supervisor()
    try:
        first, second = [
            await supervisor.start(
                name,
                "worker",
                worker_config(POOL, name, 2.0).model_dump(mode="json", by_alias=True),
            )
            for name in ("uni-0", "uni-1")
        ]
        await supervisor.stop(first)
        assert first.process.returncode is not None
        assert supervisor.children == [second]
        assert await worker_load(first.ready["grpc"], timeout_s=2.0) is None
        assert await worker_load(second.ready["grpc"], timeout_s=30.0) is not None
        # Stopping a child that is already gone only forgets it.
        await supervisor.stop(first)
    finally:
        await supervisor.stop_all()
    assert second.process.returncode is not None


@pytest.mark.asyncio
async def test_a_child_that_dies_before_it_is_ready_is_reported_and_forgotten() -> None:
    supervisor = Supervisor()
    broken = worker_config(POOL, "uni-0", 2.0).model_dump(mode="json", by_alias=True)
    broken["pool"]["profile"]["name"] = "no-such-profile"
    with pytest.raises(ChildFailedError, match="uni-0 exited with code 2 before it was ready"):
        await supervisor.start("uni-0", "worker", broken)
    assert supervisor.children == []

"""Elastic expert parallelism: a live change of an EP group's size, staged.

`/scale_elastic_ep` asks the group a worker simulates for a new number of ranks. The
change is staged as ElasticMoE stages it, so no request waits or fails for it:

    plan    the layout for the new size that moves the fewest experts, the bytes
            moved and the modelled time (`triskel.common.moe.plan_step`)
    run     the old layout and its capacity keep serving while that time passes
            (new ranks starting, experts moving, every rank reconfiguring), scaled
            by the worker's time scale
    switch  the engine takes the new group's capacity, between two of its steps

(vLLM's own elastic EP stops taking requests while it scales; the mock does not.) One
change runs at a time. A change outlives the HTTP request that asked for it: a client
that hangs up does not leave the group half-reconfigured.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from triskel.common.moe import EpStep, Layout, initial_layout, plan_step
from triskel.workers.engine.core import EngineConfig
from triskel.workers.ep_group import EpGroupSpec

# How a step's (scaled) seconds pass; tests pass one they control.
Wait = Callable[[float], Awaitable[None]]

SIZE_FIELD = "new_data_parallel_size"


class Reconfigurable(Protocol):
    def reconfigure(self, config: EngineConfig) -> None:
        """Serves with `config`'s capacity from the next engine step on, dropping nothing."""


class EpScaleError(Exception):
    """A refused change: `status` 400 (a size the group cannot take) or 409 (a change
    is already running); the message starts with the field it names."""

    def __init__(self, status: int, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.status = status
        self.field_name = field_name


class ElasticEpGroup:
    """The EP group one worker simulates: its size, expert layout and size changes.

    Call from the event loop that runs the engine (reconfiguring is then atomic with
    respect to its steps).
    """

    def __init__(
        self,
        spec: EpGroupSpec,
        engine: Reconfigurable,
        ranks: int,
        time_scale: float,
        wait: Wait = asyncio.sleep,
    ) -> None:
        self.spec = spec
        self._engine = engine
        self._time_scale = time_scale
        self._wait = wait
        self.ranks = ranks
        self.layout: Layout = initial_layout(spec.moe.num_experts, ranks)
        self.last_step: EpStep | None = None
        self.num_steps_total = 0
        self.experts_moved_total = 0
        self.bytes_moved_total = 0
        # The change running now (None: none), and the task running it.
        self.step_in_progress: EpStep | None = None
        self._task: asyncio.Task[EpStep] | None = None

    @property
    def is_scaling(self) -> bool:
        return self.step_in_progress is not None

    def plan(self, new_ranks: int) -> EpStep:
        """The step to `new_ranks` ranks from now; EpScaleError when refused."""
        step = self.step_in_progress
        if step is not None:
            raise EpScaleError(
                409,
                SIZE_FIELD,
                f"the group is already scaling from {step.old_ranks} to {step.new_ranks} "
                "ranks; one change at a time",
            )
        if new_ranks == self.ranks:
            raise EpScaleError(400, SIZE_FIELD, f"{new_ranks} is the group's EP size already")
        problem = self.spec.size_problem(new_ranks)
        if problem is not None:
            raise EpScaleError(400, SIZE_FIELD, problem)
        return plan_step(self.spec.moe, self.layout, new_ranks)

    async def scale(self, new_ranks: int) -> EpStep:
        """Changes the group to `new_ranks` ranks; returns once the new size serves."""
        step = self.plan(new_ranks)
        self.step_in_progress = step
        self._task = asyncio.create_task(self._run(step), name="elastic-ep-step")
        return await asyncio.shield(self._task)

    async def _run(self, step: EpStep) -> EpStep:
        try:
            await self._wait(step.seconds * self._time_scale)
            self._engine.reconfigure(self.spec.engine_config(step.new_ranks))
        finally:
            self.step_in_progress = None
            self._task = None
        self.ranks = step.new_ranks
        self.layout = step.layout
        self.last_step = step
        self.num_steps_total += 1
        self.experts_moved_total += step.experts_moved
        self.bytes_moved_total += step.bytes_moved
        return step

    async def close(self) -> None:
        """Abandons a change still running (the worker is stopping)."""
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

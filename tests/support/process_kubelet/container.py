"""One container's life: start, probe, restart, stop; and the state its status shows.

    start ──► running ── startup probe passes ──► started; readiness and liveness run
      ▲          │                                  (no startup probe: started at once)
      │          ├─ exits, or liveness / startup fails (preStop, SIGTERM, SIGKILL)
      │          ▼
      └─ back-off ◄── restart? (restartPolicy: Always; OnFailure when exit code != 0)
                 └─ no restart, or `stop()` ──► terminated

Back-off doubles from 0.25 s to 5 s (a kubelet's goes from 10 s to 5 min; tests cannot
wait that long) and starts over once a run lasted 10 s. `stop()` (pod deletion) runs
the preStop hook, sends SIGTERM, and SIGKILLs after what remains of the grace period
(at least 2 s, as a kubelet allows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .actions import ActionContext, Outcome, capped_sleep, run_action
from .api import Json
from .probes import ProbeTiming, probe_states
from .process import ContainerProcess, Launch, ProcessTable

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.25
_BACKOFF_MAX_S = 5.0
_BACKOFF_RESET_AFTER_S = 10.0
MIN_GRACE_S = 2.0  # a kubelet never gives SIGTERM less time than this


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Terminated:
    exit_code: int
    reason: str  # Completed, Error, StartError
    started_at: str
    finished_at: str
    message: str = ""


@dataclass(slots=True)
class ContainerState:
    """What the container's status reports; written by its runner only."""

    name: str
    image: str
    restart_count: int = 0
    pid: int | None = None
    running_since: str | None = None
    started: bool = False
    ready: bool = False
    waiting: tuple[str, str] | None = ("ContainerCreating", "")  # (reason, message)
    terminated: Terminated | None = None  # final: no restart follows
    last_terminated: Terminated | None = None


@dataclass(frozen=True, slots=True)
class RunSettings:
    restart_policy: str  # Always, OnFailure, Never
    max_probe_period_s: float | None
    max_pre_stop_sleep_s: float | None
    # Liveness or startup failures kill with the pod's terminationGracePeriodSeconds.
    termination_grace_s: float


@dataclass(slots=True)
class _Run:
    process: ContainerProcess
    started_at: str
    started_monotonic: float
    probes: asyncio.Task[None] | None = field(default=None)


class ContainerRunner:
    def __init__(
        self,
        spec: Json,
        launch: Launch,
        context: ActionContext,
        settings: RunSettings,
        table: ProcessTable,
        on_change: Callable[[], None],
    ) -> None:
        self._spec = spec
        self._launch = launch
        self._context = context
        self._settings = settings
        self._table = table
        self._on_change = on_change
        self.state = ContainerState(name=spec["name"], image=spec.get("image", ""))
        self._stopping = asyncio.Event()
        self._stop_grace_s = settings.termination_grace_s
        self._kill_lock = asyncio.Lock()
        self._run: _Run | None = None

    async def run(self) -> None:
        """Runs the container, restarting it as its pod's policy says, until it ends for
        good or `stop()` is called."""
        loop = asyncio.get_running_loop()
        failures_in_a_row = 0
        while not self._stopping.is_set():
            terminated = await self._run_once()
            ran_s = loop.time() - (self._run.started_monotonic if self._run else loop.time())
            self._run = None
            self.state.pid = self.state.running_since = None
            self.state.started = self.state.ready = False
            if self._stopping.is_set() or not self._restarts(terminated.exit_code):
                self.state.waiting, self.state.terminated = None, terminated
                self._on_change()
                return
            failures_in_a_row = 1 if ran_s >= _BACKOFF_RESET_AFTER_S else failures_in_a_row + 1
            delay_s = min(_BACKOFF_FIRST_S * 2 ** (failures_in_a_row - 1), _BACKOFF_MAX_S)
            self.state.last_terminated = terminated
            self.state.waiting = (
                "CrashLoopBackOff",
                f"back-off {delay_s:g}s restarting failed container={self.state.name}",
            )
            self._on_change()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay_s)
            if self._stopping.is_set():
                self.state.waiting, self.state.terminated = None, terminated
                self._on_change()
                return
            self.state.restart_count += 1

    async def stop(self, grace_s: float) -> None:
        """No more restarts; the running process (if any) gets its preStop hook, SIGTERM
        and, after what remains of `grace_s`, SIGKILL. Returns once it is gone."""
        self._stop_grace_s = grace_s
        self._stopping.set()
        async with self._kill_lock:
            current = self._run
            if current is not None and current.process.running:
                await self._kill(current.process, grace_s)

    async def _run_once(self) -> Terminated:
        started_at = now_rfc3339()
        loop = asyncio.get_running_loop()
        try:
            process = await ContainerProcess.start(self._launch, self._table)
        except OSError as error:
            log.warning("container %s did not start: %s", self.state.name, error)
            return Terminated(128, "StartError", started_at, now_rfc3339(), str(error))
        self._run = _Run(process, started_at, loop.time())
        self.state.pid, self.state.running_since = process.pid, started_at
        self.state.waiting = None
        self._on_change()
        self._run.probes = asyncio.create_task(self._probe(process))
        if self._stopping.is_set():  # stop() came while the process was starting
            async with self._kill_lock:
                await self._kill(process, self._stop_grace_s)
        try:
            exit_code = await process.wait()
        finally:
            probes = self._run.probes
            probes.cancel()
            await asyncio.wait([probes])  # never raises: our own cancellation stays ours
            if not probes.cancelled() and probes.exception() is not None:
                log.error("container %s: probing failed: %r", self.state.name, probes.exception())
        reason = "Completed" if exit_code == 0 else "Error"
        return Terminated(exit_code, reason, started_at, now_rfc3339())

    async def _probe(self, process: ContainerProcess) -> None:
        startup = self._spec.get("startupProbe")
        if startup is not None:
            async for passing, outcome in self._states("startup", startup):
                if not passing:
                    await self._restart_unhealthy(process, f"startup: {outcome.message}")
                    return
                break
        self.state.started = True
        readiness = self._spec.get("readinessProbe")
        if readiness is None:
            self.state.ready = True
        self._on_change()
        checks = [self._follow_readiness(readiness)] if readiness is not None else []
        liveness = self._spec.get("livenessProbe")
        if liveness is not None:
            checks.append(self._follow_liveness(liveness, process))
        await asyncio.gather(*checks)

    async def _follow_readiness(self, probe: Json) -> None:
        async for passing, _ in self._states("readiness", probe):
            self.state.ready = passing
            self._on_change()

    async def _follow_liveness(self, probe: Json, process: ContainerProcess) -> None:
        async for passing, outcome in self._states("liveness", probe):
            if not passing:
                await self._restart_unhealthy(process, f"liveness: {outcome.message}")
                return

    def _states(self, kind: str, probe: Json) -> AsyncIterator[tuple[bool, Outcome]]:
        # Readiness only marks the pod; the probes that kill keep their failure window.
        timing = ProbeTiming.of(
            probe, self._settings.max_probe_period_s, keep_failure_window=kind != "readiness"
        )
        return probe_states(f"{self.state.name} {kind}", probe, self._context, timing)

    async def _restart_unhealthy(self, process: ContainerProcess, why: str) -> None:
        log.info("container %s failed its %s probe; restarting it", self.state.name, why)
        async with self._kill_lock:
            if process.running:
                await self._kill(process, self._settings.termination_grace_s)

    async def _kill(self, process: ContainerProcess, grace_s: float) -> None:
        loop = asyncio.get_running_loop()
        begun = loop.time()
        pre_stop = self._spec.get("lifecycle", {}).get("preStop")
        if pre_stop is not None:
            pre_stop = capped_sleep(pre_stop, self._settings.max_pre_stop_sleep_s)
        if pre_stop is not None and grace_s > 0:
            try:
                outcome = await asyncio.wait_for(
                    run_action(pre_stop, self._context, grace_s), grace_s
                )
                if not outcome.ok:
                    log.warning("container %s preStop failed: %s", self.state.name, outcome)
            except TimeoutError:
                log.warning("container %s preStop outlasted %s s", self.state.name, grace_s)
        remaining_s = max(grace_s - (loop.time() - begun), MIN_GRACE_S)
        await process.stop(remaining_s)

    def _restarts(self, exit_code: int) -> bool:
        policy = self._settings.restart_policy
        return policy == "Always" or (policy == "OnFailure" and exit_code != 0)

"""How long a worker has been silent: no load report for a while. Pure: fed timestamps.

Every worker reports its load to the router about every 50 ms (`StreamStats`, or the
router's scrape of a vLLM worker's `/metrics`). A worker that stops reporting while its
connections stay up (frozen by SIGSTOP, a hung event loop, a half-open network path)
still holds every call in flight; `ClusterView` ends those calls once the silence
passes `routing.timeouts.workerSilenceS`.

Silence is counted from the router's own checks (every 0.1 s), each adding at most
`max_step_s`:

    worker frozen      reports  ||||||||||
                       checks   . . . . . . . . . . . . . . . . .
                       silence  0 0 0 0 0 .1 .2 .3 ...  (bound: out)

    router stalled     reports  |||||||||| (queued)    ||||||||||
                       checks   . . . . . ------------ . . . . .
                       silence  0 0 0 0 0   +max_step_s 0 0 0 0

A router that stalls (a GC pause, a busy 2-core CI machine) reads the reports queued
meanwhile as soon as it runs again; without the cap its own stall would count as the
workers' silence and take every healthy worker out at once.
"""

from __future__ import annotations

from dataclasses import dataclass

# Checks run every 0.1 s; one that comes much later saw the router stall, not the worker.
DEFAULT_MAX_STEP_S = 0.25


@dataclass(slots=True)
class Staleness:
    """One worker's silence, in seconds of the router's own running time."""

    max_step_s: float = DEFAULT_MAX_STEP_S
    _silent_s: float = 0.0
    _last_s: float | None = None

    def heard(self, now_s: float) -> None:
        """A load report arrived at `now_s`."""
        self._silent_s = 0.0
        self._last_s = now_s

    def check(self, now_s: float) -> float:
        """Counts the time since the last report or check (at most `max_step_s`); returns
        the silence so far."""
        if self._last_s is not None:
            self._silent_s += min(max(0.0, now_s - self._last_s), self.max_step_s)
        self._last_s = now_s
        return self._silent_s

    @property
    def silent_s(self) -> float:
        return self._silent_s

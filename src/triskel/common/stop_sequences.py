"""Stop sequences over a stream of text: what may be shown now, and whether to stop. Pure.

As vLLM does by default, the stop string itself is not shown, and text that could be
the start of a stop string is held back until the next piece says whether it is:

    stop "\\n\\n"   pieces "a\\n" | "\\nb"   shown "a" | ""   then stopped
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feed it each generated piece of text in order; `is_stopped` once a stop matched."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(stops)
        # The longest tail that could still grow into a stop string.
        self._num_held_chars = max((len(stop) for stop in self._stops), default=1) - 1
        self._held = ""
        self.is_stopped = False

    def feed(self, text: str) -> str:
        """The text that may be shown after this piece: everything before the first stop
        string (then `is_stopped`), or all but a tail that might begin one."""
        if self.is_stopped:
            return ""
        buffer = self._held + text
        found = [index for stop in self._stops if (index := buffer.find(stop)) >= 0]
        if found:
            self.is_stopped = True
            self._held = ""
            return buffer[: min(found)]
        split = len(buffer) - self._num_could_begin_a_stop(buffer)
        self._held = buffer[split:]
        return buffer[:split]

    def _num_could_begin_a_stop(self, buffer: str) -> int:
        """The length of the longest tail of `buffer` that a stop string starts with."""
        for length in range(min(self._num_held_chars, len(buffer)), 0, -1):
            tail = buffer[-length:]
            if any(stop.startswith(tail) for stop in self._stops):
                return length
        return 0

    def flush(self) -> str:
        """The held-back tail, once the stream ended without a stop."""
        held, self._held = self._held, ""
        return held

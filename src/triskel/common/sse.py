"""Server-sent events: bytes as they arrive → each event's data. Pure, no I/O.

Follows the WHATWG event-stream rules a streaming OpenAI client needs: lines end
in LF, CRLF or CR; `data:` lines of one event are joined with LF; a blank line
ends the event; comments (`:...`) and other fields are skipped. An event split
across network reads comes out once it is complete.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n")


class SseDecoder:
    """Incremental: `feed` each read, get the data of the events it completed."""

    def __init__(self) -> None:
        self._pending = b""
        self._data_lines: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        buffer = self._pending + chunk
        # A trailing CR may be the first half of a CRLF: hold it until more arrives.
        end = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        lines = _LINE_END.split(buffer[:end])
        self._pending = lines.pop() + buffer[end:]
        events = []
        for line in lines:
            data = self._take_line(line.decode())
            if data is not None:
                events.append(data)
        return events

    def _take_line(self, line: str) -> str | None:
        """The finished event's data when `line` is blank, else None."""
        if not line:
            if not self._data_lines:
                return None
            data = "\n".join(self._data_lines)
            self._data_lines = []
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data_lines.append(value.removeprefix(" "))
        return None

"""The one error every trace reader raises, pointing at the bad spot in the file."""

from __future__ import annotations

from pathlib import Path


class TraceError(ValueError):
    """A trace (or synthetic spec) file that cannot be read as a workload.

    The message reads like a compiler diagnostic so an editor can jump to it:
    `conversation_trace.jsonl:17: input_length: must be an integer >= 1, got -3`.
    `line` is 1-based as an editor shows it (a CSV header is line 1); `line` and
    `field` are None when the problem is the whole file (unknown kind, bad header
    position, YAML without line information).
    """

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        what = problem if field is None else f"{field}: {problem}"
        super().__init__(f"{where}: {what}")

"""Turns a pydantic ValidationError into one line naming each field, for conditions and events."""

from __future__ import annotations

from pydantic import ValidationError


def describe_error(error: ValidationError) -> str:
    """`spec.replicas.max: Input should be ... (got 0)`; several errors joined by `; `."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in ("spec", *item["loc"]))
        got = item.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        parts.append(f"{where}: {item['msg']}{shown}")
    return "; ".join(parts)

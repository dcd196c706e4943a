"""Pydantic ValidationErrors as the `field: message` lines a person reads.

    pools[1](decode).kvConnector.type: Input should be 'tcp' or 'mooncake'
    └── the path, list items shown with their `name` where the input has one

Files with lists of named entries (the `up` config's pools, the keys file's keys) are
easier to fix when the error names the entry, not only its index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def field_path(loc: Sequence[int | str], data: Any) -> str:
    """`keys[1](team-a).sha256`: the dotted path of `loc` in `data`, each list index
    followed by that item's `name` when it is a non-empty string."""
    path, node = "", data
    for part in loc:
        node = _child(node, part)
        if isinstance(part, int):
            name = node.get("name") if isinstance(node, dict) else None
            path += f"[{part}]" + (f"({name})" if isinstance(name, str) and name else "")
        else:
            path += ("." if path else "") + str(part)
    return path


def issue_message(issue: ErrorDetails) -> str:
    """The issue's message, without the `Value error, ` pydantic puts before the message
    of a ValueError raised by a validator (the message already says what is wrong)."""
    return str(issue["msg"]).removeprefix("Value error, ")


def first_issue(error: ValidationError, data: Any) -> str:
    """`path: message` of the first issue (only the message when it is about the whole
    document)."""
    issue = error.errors()[0]
    path, message = field_path(issue["loc"], data), issue_message(issue)
    return f"{path}: {message}" if path else message


def _child(node: Any, part: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None

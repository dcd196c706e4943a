"""Checks of JSON request fields: each returns the value or raises a 400 naming the
field in the client's terms, with the value it got. Pure."""

from __future__ import annotations

from triskel.common.sampling import shown
from triskel.workers.openai_http.errors import Json, bad_request

__all__ = ["json_object", "optional_bool", "optional_positive_int", "shown", "token_ids"]


def json_object(value: object, field: str) -> Json:
    if not isinstance(value, dict):
        raise bad_request(field, f"must be a JSON object, got {shown(value)}")
    return value


def optional_bool(fields: Json, name: str, parent: str = "") -> bool:
    value = fields.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad_request(parent + name, f"must be true or false, got {shown(value)}")
    return bool(value)


def optional_positive_int(fields: Json, name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise bad_request(name, f"must be an integer >= 1, got {shown(value)}")
    return value


def token_ids(values: list[object], field: str) -> tuple[int, ...]:
    if not values:
        raise bad_request(field, "must not be an empty array")
    for position, value in enumerate(values):
        # JSON's true is not a token id, though Python's bool is an int.
        if type(value) is not int or value < 0:
            raise bad_request(
                f"{field}[{position}]", f"a token id must be an integer >= 0, got {shown(value)}"
            )
    return tuple(values)  # type: ignore[arg-type]  # every item was checked above

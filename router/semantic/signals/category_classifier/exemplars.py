"""Packaged exemplar sets: `exemplars/<name>.yaml`, category → labelled requests.

Read as package data (importlib.resources), so they load from a wheel as well as
from a source tree; read at load only, never while routing.
"""

from __future__ import annotations

from importlib import resources

import yaml
from pydantic import TypeAdapter, ValidationError

_PACKAGE = "triskel.router.semantic.signals.category_classifier"
_SUFFIX = ".yaml"
_SET_SHAPE = TypeAdapter(dict[str, list[str]])


def packaged_sets() -> list[str]:
    """Names of the packaged exemplar sets, sorted."""
    folder = resources.files(_PACKAGE) / "exemplars"
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in folder.iterdir()
        if entry.name.endswith(_SUFFIX)
    )


def load_packaged(name: str) -> dict[str, list[str]]:
    """The packaged set `name` (one of `packaged_sets()`): category → exemplars."""
    text = (resources.files(_PACKAGE) / "exemplars" / f"{name}{_SUFFIX}").read_text("utf-8")
    try:
        return _SET_SHAPE.validate_python(yaml.safe_load(text))
    except ValidationError as error:
        # A packaging mistake, not the user's: say which file.
        raise RuntimeError(f"packaged exemplar set {name!r} is malformed: {error}") from None

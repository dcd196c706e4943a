"""The one error of the semantic configuration: a path into the config and what is wrong."""

from __future__ import annotations


class SemanticConfigError(ValueError):
    """A bad semantic or cache configuration, refused at load.

    `path` locates the fault in the user's terms (`semantic.decisions[2].rules.any[1]`,
    `semantic.signals[0].parameters.any`); `message` says what is wrong and the limit.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message

"""What a signal reads (`SignalInput`), what it answers (`SignalResult`), and its contract.

A signal named `n` that fires makes the fact `n` true; each value it reports (a
category, a band, a language, a PII kind) also makes `n:value` true. Decision rules
name facts (`{signal: domain:math}`), so a rule may only name values the signal
declares in `outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from triskel.router.semantic.embedding import Embedder

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SignalResult:
    fired: bool
    # Values that hold, best first (e.g. ("math",) for a classifier); empty for a yes/no signal.
    values: tuple[str, ...] = ()
    # Confidence or similarity of the best value, in [0, 1]; 1.0 for exact signals.
    score: float = 0.0


NOT_FIRED = SignalResult(False)


@dataclass(slots=True)
class SignalInput:
    """One request as signals see it. Texts are bounded before any signal runs, so a
    huge prompt costs what a small one does.

    The embedding of `text` is computed on first use and shared by every signal that
    reads it: one embedding per request, whatever number of signals.
    """

    # What the request asks: the last user message (head and tail of it when long).
    text: str
    # Every message's text (system prompt included), bounded the same way; for signals
    # that must see the whole conversation (PII, keywords with scope: conversation).
    conversation_text: str
    # The whole prompt's length in tokens (estimated from the full text, not the bounded one).
    prompt_tokens: int
    num_images: int = 0
    # Request headers, lower-case names (credentials already left out by the front).
    headers: Mapping[str, str] = field(default_factory=dict)
    embed: Callable[[str], Vector] | None = None
    _embedding: Vector | None = None

    def embedding(self) -> Vector:
        """`text`'s unit-length embedding, computed once."""
        if self._embedding is None:
            if self.embed is None:
                raise RuntimeError("SignalInput has no embedder")
            self._embedding = self.embed(self.text)
        return self._embedding

    @property
    def has_embedding(self) -> bool:
        return self._embedding is not None


@runtime_checkable
class Signal(Protocol):
    """Evaluates one request. Pure: no I/O, no clock; must not keep per-request state."""

    name: str
    # Values `evaluate` may report, for checking rules at load; empty: a yes/no signal.
    outputs: frozenset[str]

    def evaluate(self, request: SignalInput) -> SignalResult: ...


@dataclass(frozen=True, slots=True)
class SignalContext:
    """What factories may use: the embedding model (loaded once per router), nothing else."""

    embedder: Embedder | None = None

    def require_embedder(self) -> Embedder:
        if self.embedder is None:
            raise RuntimeError("this signal needs an embedding model and none was loaded")
        return self.embedder

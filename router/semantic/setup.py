"""Loads a `semantic:` section for a router: its embedding model, then the policy.

The one place the router, `triskel up` and the operator turn configuration into a
`SemanticPolicy`, so all three accept and refuse the same files. Loading the
embedding model reads its files (once per process per model name); the policy
itself is built by the pure loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from triskel.common.semantic_api import SemanticSpec
from triskel.router.semantic.embedding import Embedder, EmbeddingModelError, load_embedder
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.loader import Targets, load_semantic_policy
from triskel.router.semantic.policy import SemanticPolicy
from triskel.router.semantic.signals.base import SignalContext
from triskel.router.semantic.signals.builtin import default_signal_registry


@dataclass(slots=True)
class EmbedderCache:
    """Embedding models by name, loaded on first use; one per process (a router reload
    must not pay the load again)."""

    _loaded: dict[str, Embedder] = field(default_factory=dict)

    @classmethod
    def holding(cls, embedder: Embedder) -> EmbedderCache:
        """A cache that already holds `embedder` under its name (tests, benchmarks)."""
        return cls({embedder.name: embedder})

    def get(self, name: str, path: str) -> Embedder:
        if name not in self._loaded:
            try:
                self._loaded[name] = load_embedder(name)
            except EmbeddingModelError as error:
                raise SemanticConfigError(path, str(error)) from None
            except Exception as error:  # a model that fails to load: say which, briefly
                raise SemanticConfigError(
                    path, f"cannot load embedding model {name!r}: {type(error).__name__}"
                ) from None
        return self._loaded[name]


def load_semantic(
    spec: SemanticSpec, targets: Targets, embedders: EmbedderCache, path: str = "semantic"
) -> tuple[SemanticPolicy, Embedder]:
    """The policy and the embedder its signals read; SemanticConfigError with a path."""
    embedder = embedders.get(spec.embedding_model, f"{path}.embeddingModel")
    context = SignalContext(embedder=embedder)
    policy = load_semantic_policy(spec, default_signal_registry(), context, targets, path)
    return policy, embedder

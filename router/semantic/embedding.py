"""Text embeddings for semantic signals and the semantic cache.

The default model, WordLlama (256 dimensions, ~16 MB), ships inside its wheel and
loads offline in well under a second; one embedding costs tens of microseconds on
one core. A larger model (any sentence-transformers model) plugs in through the
same `Embedder` protocol with the `semantic-large` extra. Vectors are unit length,
so a dot product is the cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

DEFAULT_EMBEDDING_MODEL = "wordllama"
# The default model's dimension: the semantic cache's index is built for it.
DEFAULT_EMBEDDING_DIM = 256


class EmbeddingModelError(RuntimeError):
    """The embedding model cannot be loaded (not installed, or a name nobody knows)."""


class Embedder(Protocol):
    """Text → unit-length float32 vectors, one row per text, `dim` columns."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class WordLlamaEmbedder:
    """WordLlama's packaged 256-dimension model, loaded from the installed wheel only."""

    def __init__(self) -> None:
        import wordllama

        # 0.4.0.post1 looks for its tokenizer beside the cache folder, then downloads:
        # pointing the cache at the package's own folder keeps it offline.
        self._model: Any = wordllama.WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )
        self.name = DEFAULT_EMBEDDING_MODEL
        self.dim = int(self._model.embed(["x"]).shape[1])

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors: Vectors = self._model.embed(list(texts), norm=True).astype(np.float32)
        return vectors


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (e.g. `all-MiniLM-L6-v2`); needs torch."""

    def __init__(self, model_name: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbeddingModelError(
                f"embedding model {model_name!r} needs sentence-transformers: "
                "pip install 'triskel[semantic-large]'"
            ) from None
        self._model = SentenceTransformer(model_name, device="cpu")
        self.name = model_name
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = self._model.encode(list(texts), normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def load_embedder(name: str = DEFAULT_EMBEDDING_MODEL) -> Embedder:
    """`wordllama` (packaged), or a sentence-transformers model name."""
    if name == DEFAULT_EMBEDDING_MODEL:
        return WordLlamaEmbedder()
    return SentenceTransformerEmbedder(name)

"""The default signal registry: every built-in signal, registered by its type name."""

from __future__ import annotations

from types import ModuleType

from triskel.router.semantic.signals import (
    category_classifier,
    context_length,
    embedding_similarity,
    header_match,
    keywords,
    language,
    modality,
    pii,
)
from triskel.router.semantic.signals.registry import SignalRegistry

BUILTIN_SIGNALS: tuple[ModuleType, ...] = (
    keywords,
    embedding_similarity,
    category_classifier,
    context_length,
    modality,
    header_match,
    language,
    pii,
)


def default_signal_registry() -> SignalRegistry:
    """A fresh registry with every built-in signal (one per router, never shared)."""
    registry = SignalRegistry()
    for module in BUILTIN_SIGNALS:
        registry.register(module.TYPE_NAME, module.create, module.SUMMARY)
    return registry

"""Semantic routing and semantic cache configuration: the `semantic:` and `cache:` sections.

Shared by `triskel up` files (`routing.semantic`, `routing.cache`), the router, and
the `RoutingPolicy` custom resource, whose CRD schema is generated from these models.
Rule trees and signal parameters are free-form here: a CRD schema cannot be
recursive, and each signal type parses its own parameters. The router's loader
(`triskel.router.semantic.loader`) checks them, naming the path of any fault.

    semantic:
      alias: auto                       # clients send model: auto
      signals:
        - {type: keywords, name: code_words, parameters: {any: [python, rust]}}
        - {type: category-classifier, name: domain, parameters: {builtin: general}}
      decisions:
        - name: math
          priority: 100
          rules: {any: [{signal: "domain:math"}, {signal: math_words}]}
          model: qwen2.5-32b
          reasoning: {enabled: true}
      default: {model: llama-3.1-8b, category: chat}
    cache:
      categories:
        - {name: code, similarityThreshold: 0.95, ttlSeconds: 3600, maxEntries: 10000}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator

from triskel.common.api import ApiModel

NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
ModelName = Annotated[str, Field(min_length=1, max_length=253)]

DEFAULT_ALIAS = "auto"
# What the classifiers read of a long message: its head and its tail (an instruction
# is usually at one end of a pasted document), never megabytes.
DEFAULT_MAX_CLASSIFY_CHARS = 1000


class SignalEntry(ApiModel):
    type: Annotated[str, Field(min_length=1)]
    """The signal's type (`keywords`, `category-classifier`, `pii`...)."""
    name: Name | None = None
    """What rules call it; defaults to `type`."""
    parameters: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Parsed (and refused) by the signal type itself."""

    @property
    def ref(self) -> str:
        return self.name or self.type


class SystemPromptMode(StrEnum):
    PREPEND = "prepend"
    REPLACE = "replace"


class SystemPrompt(ApiModel):
    text: Annotated[str, Field(min_length=1, max_length=16_000)]
    mode: SystemPromptMode = SystemPromptMode.PREPEND
    """prepend: before the client's own system prompt; replace: instead of it."""


class ReasoningEffort(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Reasoning(ApiModel):
    enabled: bool
    """Sets `chat_template_kwargs.enable_thinking` for the engine."""
    effort: ReasoningEffort | None = None
    """Sets `reasoning_effort` when given."""


class Block(ApiModel):
    message: Annotated[str, Field(max_length=1000)] = ""
    """Told to the client in the 403 (the decision's name is always told)."""


class Action(ApiModel):
    """Where a matched request goes and how it is changed."""

    model: ModelName | None = None
    """The served model that answers."""
    serving_graph: Name | None = None
    """Or: a ServingGraph (in the policy's namespace) whose model answers."""
    fallback_models: list[ModelName] = Field(default_factory=list)
    """Tried in order when the target has no ready pool (no fallback when empty)."""
    category: Name | None = None
    """The category the request is counted and cached under; defaults to the decision name."""
    system_prompt: SystemPrompt | None = None
    reasoning: Reasoning | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    """A cap on the completion's tokens (a smaller client value stays)."""
    block: Block | None = None
    """Refuse the request with 403 (e.g. personal data bound for an external model)."""

    @model_validator(mode="after")
    def _one_target(self) -> Action:
        if self.block is None and (self.model is None) == (self.serving_graph is None):
            raise ValueError("give exactly one of model and servingGraph (or block)")
        return self


class Decision(Action):
    name: Name
    priority: int = 0
    """Higher first; equal priorities in the order listed."""
    rules: dict[str, Any] = Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
    """A rule tree: {signal: NAME[:VALUE]}, {decision: NAME}, {all: [...]}, {any: [...]},
    {not: {...}}, nested."""


class DefaultAction(Action):
    """What applies when no decision matches."""

    category: Name | None = "default"


class SemanticSpec(ApiModel):
    alias: Annotated[str, Field(min_length=1, max_length=253)] = DEFAULT_ALIAS
    """The model name that means "let Triskel choose"."""
    embedding_model: Annotated[str, Field(min_length=1)] = "wordllama"
    """`wordllama` (packaged, offline) or a sentence-transformers model name."""
    max_classify_chars: Annotated[int, Field(ge=64, le=100_000)] = DEFAULT_MAX_CLASSIFY_CHARS
    """Characters of the last user message the classifiers read (head and tail)."""
    signals: list[SignalEntry] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    default: DefaultAction


class LoadAdaptation(ApiModel):
    """How far a category's cache loosens while its model is loaded (predicted TTFT over
    its SLO): linearly from the base values at pressure 1 to these at `fullPressure`."""

    min_similarity_threshold: Annotated[float, Field(gt=0, le=1)]
    max_ttl_seconds: Annotated[int, Field(ge=1)]
    full_pressure: Annotated[float, Field(gt=1, le=100)] = 2.0
    """Predicted TTFT / SLO at which the loosest values apply."""


class CacheCategory(ApiModel):
    name: Name
    """A category set by a decision, or `default`."""
    enabled: bool = True
    similarity_threshold: Annotated[float, Field(gt=0, le=1)] = 0.75
    """Cosine similarity of content words a cached prompt needs to answer a new one (the
    lexical guards must agree too; 0.75 chosen on tests/data/semantic_tuning/)."""
    ttl_seconds: Annotated[int, Field(ge=1)] = 3600
    max_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    """Quota: beyond it the category's least recently used entry goes."""
    replay_sampled: bool = False
    """Also store answers sampled with temperature > 0 (they are not reproducible)."""
    under_load: LoadAdaptation | None = None

    @model_validator(mode="after")
    def _loosening_loosens(self) -> CacheCategory:
        load = self.under_load
        if load is not None and load.min_similarity_threshold > self.similarity_threshold:
            raise ValueError(
                f"underLoad.minSimilarityThreshold ({load.min_similarity_threshold}) must "
                f"be <= similarityThreshold ({self.similarity_threshold})"
            )
        if load is not None and load.max_ttl_seconds < self.ttl_seconds:
            raise ValueError(
                f"underLoad.maxTtlSeconds ({load.max_ttl_seconds}) must be >= "
                f"ttlSeconds ({self.ttl_seconds})"
            )
        return self


class CacheSpec(ApiModel):
    enabled: bool = True
    categories: list[CacheCategory] = Field(default_factory=list)
    """Categories not listed are not cached."""

    @model_validator(mode="after")
    def _unique(self) -> CacheSpec:
        names = [c.name for c in self.categories]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"cache categories listed twice: {', '.join(repeated)}")
        return self

    def category(self, name: str) -> CacheCategory | None:
        return next((c for c in self.categories if c.name == name), None)

"""Semantic routing: signals about a request → named decisions → the model that answers.

    request ──► SignalInput (bounded text, token estimate, images, headers, one embedding)
            ──► signals (keywords, classifier, similarity, context length, language, PII...)
            ──► decisions (rule trees over signal facts, by priority) ──► SemanticDecision

Everything here is pure (no I/O): the router, the operator (validating a
RoutingPolicy) and the simulator run the same functions. Ideas from vLLM Semantic
Router (signals → decisions, a `model: auto` alias); see docs/semantic.md.
"""

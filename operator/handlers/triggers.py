"""The kopf triggers every kind's handlers use, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import kopf

from triskel.common.resources import API_GROUP, API_VERSION

F = TypeVar("F", bound=Callable[..., Any])


def on_spec_change(plural: str, registry: kopf.OperatorRegistry) -> Callable[[F], F]:
    """Runs the handler on create, on update and when the operator (re)starts (`resume`),
    under one id, so a reconcile cut short by a restart is simply run again."""

    def decorate(handler: F) -> F:
        for trigger in (kopf.on.resume, kopf.on.create, kopf.on.update):
            trigger(API_GROUP, API_VERSION, plural, id="reconcile", registry=registry)(handler)
        return handler

    return decorate


def every(
    plural: str, interval_s: float, handler_id: str, registry: kopf.OperatorRegistry
) -> Callable[[F], F]:
    """Runs the handler every `interval_s` per object (status refresh), first after one
    interval (the reconcile has just run)."""

    def decorate(handler: F) -> F:
        kopf.timer(
            API_GROUP,
            API_VERSION,
            plural,
            id=handler_id,
            interval=interval_s,
            initial_delay=interval_s,
            registry=registry,
        )(handler)
        return handler

    return decorate

"""Every route the design promises is there, with its method."""

from __future__ import annotations

import pytest

from triskel.common.api import Role
from triskel.workers.openai_http.app import HttpApiSettings, build_worker_app
from triskel.workers.openai_http.info import ServingState

from support.engines import mock_engine

ROUTES = [
    ("POST", "/v1/completions"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions/render"),
    ("POST", "/v1/chat/completions/render"),
    ("GET", "/v1/models"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("POST", "/tokenize"),
    ("POST", "/detokenize"),
    ("GET", "/get_model_info"),
    ("GET", "/model_info"),
    ("GET", "/get_server_info"),
    ("GET", "/server_info"),
    ("GET", "/version"),
    ("POST", "/scale_elastic_ep"),
    ("POST", "/is_scaling_elastic_ep"),
]


@pytest.mark.asyncio
async def test_every_route_is_served() -> None:
    app = build_worker_app(mock_engine(Role.UNIFIED, "w"), HttpApiSettings(), ServingState())
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert served == set(ROUTES)

"""Fuzzing the router's HTTP front (/v1/completions, /v1/chat/completions, /v1/models):
any body, any headers, ends within its deadline with an answer or a 4xx whose JSON body
names the problem; never a 5xx, never a traceback in the router's log.

Hypothesis strategies stand in for schemathesis here: the API's shape is a handful of
fields (support.fuzz_bodies), and a JSON body that is mostly right reaches deeper checks
than one drawn from a schema of every field at once.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.cluster import local_cluster, small_config
from support.fuzz_bodies import HEADERS, completion_bodies, encoded, raw_bodies
from support.fuzz_messages import MODEL
from support.fuzzing import (
    CALL_DEADLINE_S,
    FUZZ_POOLS,
    FUZZ_SETTINGS,
    MAX_MESSAGES_READ,
    MAX_RSS_GROWTH_BYTES,
    assert_no_tracebacks,
    rss_bytes,
)

PATHS = ("/v1/completions", "/v1/chat/completions")


def post(address: str, path: str, body: bytes, headers: dict[str, str]) -> None:
    """POSTs and checks the answer: an OpenAI reply, an SSE stream or a clear 4xx."""
    started_s = time.monotonic()
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=CALL_DEADLINE_S)
    try:
        connection.request("POST", path, body=body, headers=_latin1(headers))
        response = connection.getresponse()
        assert response.status < 500, (response.status, response.read()[:500])
        if response.status >= 400:
            error = json.loads(response.read())["error"]
            assert error["message"], error
        elif response.getheader("content-type", "").startswith("text/event-stream"):
            _read_events(response, started_s)
        else:
            reply = json.loads(response.read())
            assert reply["choices"], reply
    finally:
        connection.close()
    assert time.monotonic() - started_s < CALL_DEADLINE_S


def _read_events(response: http.client.HTTPResponse, started_s: float) -> None:
    """Reads SSE events until [DONE] or MAX_MESSAGES_READ; none may be an error."""
    num_events = 0
    while num_events < MAX_MESSAGES_READ:
        assert time.monotonic() - started_s < CALL_DEADLINE_S, "the stream stalled"
        line = response.readline()
        assert line, "the stream ended without [DONE]"
        if not line.startswith(b"data: "):
            continue
        data = line[len(b"data: ") :].strip()
        if data == b"[DONE]":
            return
        event = json.loads(data)
        assert "error" not in event, event
        num_events += 1


def _latin1(headers: dict[str, str]) -> dict[str, Any]:
    # http.client encodes str values as latin-1 itself, but only after checking them.
    return {name: value.encode("latin-1") for name, value in headers.items()}


def fuzz_http(http_url: str) -> None:
    address = urlsplit(http_url).netloc
    json_type = {"content-type": "application/json"}

    @FUZZ_SETTINGS
    @given(st.sampled_from(PATHS).flatmap(_body_for), HEADERS)
    def json_body_ends_clearly(case: tuple[str, bytes], headers: dict[str, str]) -> None:
        path, body = case
        post(address, path, body, {**headers, **json_type})

    @FUZZ_SETTINGS
    @given(st.sampled_from(PATHS), raw_bodies())
    def raw_body_ends_clearly(path: str, case: tuple[bytes, dict[str, str]]) -> None:
        body, headers = case
        post(address, path, body, headers)

    @FUZZ_SETTINGS
    @given(HEADERS, st.text(max_size=30))
    def models_list_answers(headers: dict[str, str], query: str) -> None:
        host, port = address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=CALL_DEADLINE_S)
        try:
            connection.request(
                "GET", "/v1/models?" + query.encode().hex(), headers=_latin1(headers)
            )
            response = connection.getresponse()
            assert response.status == 200, response.status
            assert json.loads(response.read())["data"][0]["id"] == MODEL
        finally:
            connection.close()

    json_body_ends_clearly()
    raw_body_ends_clearly()
    models_list_answers()


def _body_for(path: str) -> st.SearchStrategy[tuple[str, bytes]]:
    bodies = completion_bodies(chat=path.endswith("chat/completions"))
    return bodies.map(lambda body: (path, encoded(body)))


@pytest.mark.asyncio
async def test_any_http_request_ends_with_an_answer_or_a_clear_4xx(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rss_before = rss_bytes()
    async with local_cluster(small_config(FUZZ_POOLS)) as cluster:
        await asyncio.to_thread(fuzz_http, cluster.http_url)
    assert_no_tracebacks(caplog.records)
    assert rss_bytes() - rss_before < MAX_RSS_GROWTH_BYTES

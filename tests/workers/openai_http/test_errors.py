"""Engine errors → HTTP statuses, and the vLLM error body."""

from __future__ import annotations

import pytest

from triskel.workers.api import EngineFailure, EngineInputError, EngineKvGone, EngineRoleError
from triskel.workers.openai_http.errors import ApiError, bad_request, engine_error


def test_the_body_is_vllms() -> None:
    assert bad_request("max_tokens", "must be >= 1").json() == {
        "error": {
            "message": "max_tokens: must be >= 1",
            "type": "BadRequestError",
            "param": "max_tokens",
            "code": 400,
        }
    }
    # A status without a vLLM name takes its HTTP phrase.
    assert ApiError(409, "x").error_type == "Conflict"


@pytest.mark.parametrize(
    ("error", "status", "param", "message"),
    [
        # The engine knows the prompt as prompt_token_ids; the client sent `messages`.
        (
            EngineInputError("prompt_token_ids", "must not be empty"),
            400,
            "messages",
            "messages: must not be empty",
        ),
        (EngineInputError("max_tokens", "too many"), 400, "max_tokens", "max_tokens: too many"),
        (EngineRoleError("Decode is not served by a prefill worker"), 400, None, "Decode is not"),
        # A stale handle is handled (410) by the flow that knows which field carried it;
        # anything else the engine could not do is a 503.
        (EngineKvGone("gone"), 503, None, "gone"),
        (EngineFailure("worker shutting down"), 503, None, "worker shutting down"),
        # Unexpected errors say where to look, never what broke inside.
        (KeyError("secret"), 500, None, "the worker's log has details (request r1)"),
    ],
)
def test_engine_errors_map_to_statuses(
    error: Exception, status: int, param: str | None, message: str
) -> None:
    reply = engine_error(error, "messages", "r1")
    assert (reply.status, reply.param) == (status, param)
    assert message in reply.message
    assert "secret" not in reply.message


def test_api_errors_pass_through() -> None:
    error = ApiError(410, "gone", "kv_transfer_params.remote_request_id")
    assert engine_error(error, "prompt", "r1") is error

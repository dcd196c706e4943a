"""HTTP errors of the worker's vLLM-compatible API, and how engine errors map onto them.

Every failure reaches the client as vLLM shapes it:

    {"error": {"message": "...", "type": "BadRequestError", "param": "max_tokens", "code": 400}}

never as a traceback. `param` names the offending request field in the client's terms
(`kv_transfer_params.remote_port`), or is null when no single field is to blame.
"""

from __future__ import annotations

from http import HTTPStatus

from triskel.workers.api import EngineFailure, EngineInputError, EngineRoleError

Json = dict[str, object]

# vLLM's error types by status; any other status takes its HTTP phrase.
_ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    410: "GoneError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}


class ApiError(Exception):
    """A request failed with an HTTP status the client should see, and why."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    @property
    def error_type(self) -> str:
        return _ERROR_TYPES.get(self.status) or HTTPStatus(self.status).phrase.replace(" ", "")

    def json(self) -> Json:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.status,
            }
        }


def bad_request(param: str, message: str) -> ApiError:
    """A 400 whose message starts with the field it names, as every Triskel error does."""
    return ApiError(400, f"{param}: {message}", param)


def engine_error(error: Exception, prompt_field: str, request_id: str) -> ApiError:
    """The reply for an error the engine raised.

    `prompt_field` is the request field the prompt came from (`prompt` or `messages`):
    the engine knows the prompt only as `prompt_token_ids`. Unexpected errors say only
    where to look, never what broke inside.
    """
    if isinstance(error, ApiError):
        return error
    if isinstance(error, EngineInputError):
        param = prompt_field if error.field_name == "prompt_token_ids" else error.field_name
        message = str(error).replace("prompt_token_ids", prompt_field, 1)
        return ApiError(400, message, param)
    if isinstance(error, EngineRoleError):
        return ApiError(400, str(error))
    if isinstance(error, EngineFailure):
        return ApiError(503, str(error))
    return ApiError(500, f"internal error; the worker's log has details (request {request_id})")

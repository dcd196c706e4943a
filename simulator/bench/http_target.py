"""The router's OpenAI front as a bench target: streamed `/v1/completions` with token ids.

Each request sends the prompt as token ids, `max_tokens` = the trace's output
length with `ignore_eos` (so exactly that many tokens come back), and asks for a
usage chunk, whose `prompt_tokens_details.cached_tokens` gives the prefix-cache hits.
"""

from __future__ import annotations

import aiohttp
import orjson

from triskel.common.sse import SseDecoder
from triskel.simulator.bench.outcome import Outcome, RequestFailed, StreamTimes
from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.bench.target import Clock, TargetError

LIST_MODELS_TIMEOUT_S = 10.0
_SSE_DONE = "[DONE]"
_MAX_ERROR_CHARS = 200


class CompletionStream:
    """One streamed completion's events → its Outcome. Pure: the caller gives the times."""

    def __init__(self) -> None:
        self._times = StreamTimes()
        self._usage: dict[str, object] | None = None
        self.is_done = False

    def on_event(self, data: str, now_s: float) -> None:
        """Takes one event's data; RequestFailed for an error event or a malformed one."""
        if data == _SSE_DONE:
            self.is_done = True
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise RequestFailed(f"a stream event is not JSON: {data[:_MAX_ERROR_CHARS]}") from None
        if not isinstance(payload, dict):
            raise RequestFailed("a stream event is not a JSON object")
        if payload.get("error") is not None:
            raise RequestFailed(f"error event: {_error_message(payload)}")
        choices = payload.get("choices") or []
        # One text delta per engine step; the usage chunk's count corrects it if not.
        num_tokens = sum(1 for c in choices if isinstance(c, dict) and c.get("text"))
        self._times.on_tokens(num_tokens, now_s)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage = usage

    def outcome(self) -> Outcome:
        """The completed stream; RequestFailed if it ended before `[DONE]`."""
        if not self.is_done:
            raise RequestFailed("the stream ended before [DONE]")
        usage = self._usage or {}
        completion_tokens = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return self._times.outcome(
            completion_tokens if isinstance(completion_tokens, int) else None,
            cached if isinstance(cached, int) else 0,
        )


class HttpTarget:
    """Implements `Target` over one aiohttp session (made on first use, in the running loop)."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._session: aiohttp.ClientSession | None = None

    async def list_models(self) -> list[str]:
        url = f"{self._base_url}/v1/models"
        timeout = aiohttp.ClientTimeout(total=LIST_MODELS_TIMEOUT_S)
        try:
            async with self._client().get(url, timeout=timeout) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            reason = str(error) or type(error).__name__
            raise TargetError(f"cannot reach the router at {self._base_url}: {reason}") from None
        if status != 200:
            raise TargetError(f"{url}: HTTP {status}")
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            body = None
        models = body.get("data") if isinstance(body, dict) else None
        if not isinstance(models, list):
            raise TargetError(f"{url}: not an OpenAI model list")
        return [str(m.get("id")) for m in models if isinstance(m, dict)]

    async def generate(self, request: BenchRequest, model: str, clock: Clock) -> Outcome:
        body = orjson.dumps(
            {
                "model": model,
                "prompt": self._prompt(request),
                "max_tokens": request.num_output_tokens,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        headers = {"Content-Type": "application/json"}
        stream = CompletionStream()
        decoder = SseDecoder()
        url = f"{self._base_url}/v1/completions"
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise RequestFailed(f"HTTP {response.status}: {await _error_text(response)}")
                async for chunk in response.content.iter_any():
                    now_s = clock()
                    for data in decoder.feed(chunk):
                        stream.on_event(data, now_s)
        except aiohttp.ClientError as error:
            raise RequestFailed(f"connection failed: {error}") from None
        return stream.outcome()

    def _prompt(self, request: BenchRequest) -> object:
        """What the request sends as `prompt`: its exact token ids."""
        return request.prompt_token_ids

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Open loop: no cap on connections, or the client would queue requests itself.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=LIST_MODELS_TIMEOUT_S),
            )
        return self._session


async def _error_text(response: aiohttp.ClientResponse) -> str:
    """The OpenAI error message of a refused request, or the start of its body."""
    text = await response.text()
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text[:_MAX_ERROR_CHARS].strip() or response.reason or "no body"
    return _error_message(payload) if isinstance(payload, dict) else text[:_MAX_ERROR_CHARS]


def _error_message(payload: dict[str, object]) -> str:
    error = payload.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(error)[:_MAX_ERROR_CHARS]

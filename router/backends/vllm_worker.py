"""vLLM's OpenAI-compatible HTTP API behind `WorkerClient`: real vLLM, or a mock worker.

Identity: vLLM does not say its P/D role or KV block size, so they come from the
router's configuration (a pool's spec in a cluster). A Triskel mock worker also
answers `/get_model_info` with its whole description, which fills in the rest.
Load: the worker's `/metrics`, scraped every stats interval. KV events: none (vLLM
publishes them over ZMQ, which this backend does not read), so prefix-aware
policies use the router's own history for these workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
import orjson

from triskel.common.api import Role
from triskel.common.sse import SseDecoder
from triskel.router.backends.vllm_metrics import MetricsFormatError, parse_load
from triskel.router.backends.vllm_protocol import (
    BACKEND,
    DecodeStreamState,
    decode_body,
    error_of,
    prefill_body,
    prefill_reply,
)
from triskel.router.scheduling.types import WorkerLoad
from triskel.router.types import ImagePart
from triskel.router.worker_client import (
    CallFailure,
    DecodeCall,
    DecodeEvent,
    KvPulled,
    PrefillCall,
    PrefillReply,
    WorkerCallError,
    WorkerClient,
    WorkerIdentity,
)

# vLLM's default KV block size, for workers that do not say theirs.
DEFAULT_BLOCK_SIZE_TOKENS = 16
_CONNECT_RETRY_S = 0.2
# Mock workers report the pull in these headers (sent once the KV has arrived).
KV_BYTES_HEADER = "X-Triskel-Kv-Received-Bytes"
KV_MS_HEADER = "X-Triskel-Kv-Transfer-Ms"


class VllmWorkerClient(WorkerClient):
    def __init__(
        self,
        url: str,
        role: Role | None = None,
        model: str | None = None,
        block_size_tokens: int | None = None,
    ) -> None:
        super().__init__(url.rstrip("/"))
        self._role = role
        self._model = model
        self._block_size_tokens = block_size_tokens
        self._session: aiohttp.ClientSession | None = None
        # From a mock worker's description; vLLM's /metrics says it too (cache_config_info).
        self._num_kv_blocks = 0

    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def has_kv_events(self) -> bool:
        return False

    async def connect(self, timeout_s: float) -> WorkerIdentity:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._identity = await self._learn_identity()
                return self._identity
            except WorkerCallError as error:
                if error.failure is not CallFailure.UNAVAILABLE or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(_CONNECT_RETRY_S)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def encode(
        self, request_id: str, images: Sequence[ImagePart], timeout_s: float
    ) -> list[tuple[int, ...]]:
        raise WorkerCallError(
            CallFailure.UNAVAILABLE, f"{self.address}: vLLM-API workers serve no encode stage"
        )

    async def prefill(self, call: PrefillCall, timeout_s: float) -> PrefillReply:
        body = prefill_body(call, self.identity.model)
        payload = await self._post_json("/v1/completions", body, call.request_id, timeout_s)
        return prefill_reply(payload, call, self.identity.kv_connector)

    async def decode(self, call: DecodeCall, timeout_s: float) -> AsyncGenerator[DecodeEvent, None]:
        body = decode_body(call, self.identity.model)
        where = f"{self.address}/v1/completions"
        started = time.perf_counter()
        state = DecodeStreamState()
        decoder = SseDecoder()
        with _mapped_transport(where):
            async with self._http().post(
                where,
                data=orjson.dumps(body),
                headers=_headers(call.request_id),
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                if response.status != 200:
                    raise error_of(response.status, await _json_or_text(response), where)
                if call.kv is not None:
                    yield _kv_pulled(response.headers, started)
                async for chunk in response.content.iter_any():
                    for data in decoder.feed(chunk):
                        parsed = None if data == "[DONE]" else _loads(data)
                        tokens = state.on_data(data, parsed)
                        if tokens is not None:
                            yield tokens
                    if state.is_done:
                        break
        yield state.finished()

    async def cancel(self, request_id: str) -> None:
        # vLLM has no call for it: the KV a prefill kept expires on the worker's timer
        # (closing a stream's connection already aborts a running request).
        return None

    async def watch_load(self, interval_ms: int) -> AsyncIterator[WorkerLoad]:
        where = f"{self.address}/metrics"
        timeout = aiohttp.ClientTimeout(total=max(1.0, interval_ms / 100))
        while True:
            with _mapped_transport(where):
                async with self._http().get(where, timeout=timeout) as response:
                    if response.status != 200:
                        raise error_of(response.status, await response.text(), where)
                    text = await response.text()
            try:
                yield parse_load(text, self._num_kv_blocks)
            except MetricsFormatError as error:
                raise WorkerCallError(CallFailure.UNAVAILABLE, f"{where}: {error}") from None
            await asyncio.sleep(interval_ms / 1000)

    # -- helpers ----------------------------------------------------------------

    async def _learn_identity(self) -> WorkerIdentity:
        info = await self._get_json("/get_model_info")
        described = info.get("triskel") if isinstance(info, dict) else None
        own: dict[str, Any] = described if isinstance(described, dict) else {}
        model = self._model or own.get("model") or await self._served_model()
        role = self._role or _role(own.get("role"), self.address)
        self._num_kv_blocks = int(own.get("num_kv_blocks") or 0)
        return WorkerIdentity(
            worker_id=str(own.get("worker_id") or self.address.split("://", 1)[-1]),
            address=self.address,
            role=role,
            model=str(model),
            profile=str(own.get("profile") or "vllm"),
            block_size_tokens=int(
                self._block_size_tokens or own.get("block_size_tokens") or DEFAULT_BLOCK_SIZE_TOKENS
            ),
            max_context_tokens=int(own.get("max_context_tokens") or 0)
            or await self._max_model_len(),
            kv_connector=str(own.get("kv_connector") or "nixl"),
            hash_salt=str(own.get("hash_salt") or ""),
        )

    async def _served_model(self) -> str:
        models = await self._get_json("/v1/models")
        data = models.get("data") if isinstance(models, dict) else None
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise WorkerCallError(
                CallFailure.INVALID_ARGUMENT, f"{self.address}/v1/models lists no model", "model"
            )
        return str(data[0].get("id"))

    async def _max_model_len(self) -> int:
        models = await self._get_json("/v1/models")
        data = models.get("data") if isinstance(models, dict) else None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            value = data[0].get("max_model_len")
            if isinstance(value, int) and value > 0:
                return value
        raise WorkerCallError(
            CallFailure.INVALID_ARGUMENT,
            f"{self.address}/v1/models does not say max_model_len",
            "max_model_len",
        )

    async def _get_json(self, path: str) -> Any:
        where = f"{self.address}{path}"
        with _mapped_transport(where):
            async with self._http().get(where, timeout=aiohttp.ClientTimeout(total=5)) as reply:
                if reply.status == 404:
                    return {}
                if reply.status != 200:
                    raise error_of(reply.status, await _json_or_text(reply), where)
                return await _json_or_text(reply)

    async def _post_json(self, path: str, body: Any, request_id: str, timeout_s: float) -> Any:
        where = f"{self.address}{path}"
        with _mapped_transport(where):
            async with self._http().post(
                where,
                data=orjson.dumps(body),
                headers=_headers(request_id),
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                payload = await _json_or_text(response)
                if response.status != 200:
                    raise error_of(response.status, payload, where)
                return payload

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created on first use, not in __init__: a session binds to the running loop.
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session


def _headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Request-Id": request_id}


def _kv_pulled(headers: Any, started: float) -> KvPulled:
    """The pull as the worker reported it; elapsed time to the answer otherwise."""
    try:
        num_bytes = int(headers.get(KV_BYTES_HEADER, "0"))
        transfer_ms = float(headers.get(KV_MS_HEADER, "nan"))
    except ValueError:
        num_bytes, transfer_ms = 0, float("nan")
    if transfer_ms != transfer_ms:  # NaN: not reported
        transfer_ms = (time.perf_counter() - started) * 1000
    return KvPulled(num_bytes, transfer_ms)


def _role(value: object, address: str) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise WorkerCallError(
            CallFailure.INVALID_ARGUMENT,
            f"{address} does not say its role: give `role` for vLLM workers",
            "role",
        ) from None


def _loads(data: str) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise WorkerCallError(
            CallFailure.UNAVAILABLE, f"malformed stream chunk {data[:80]!r}"
        ) from None


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


@contextlib.contextmanager
def _mapped_transport(where: str) -> Iterator[None]:
    """Connection-level failures (refused, reset, timed out) as WorkerCallError."""
    try:
        yield
    except TimeoutError:
        raise WorkerCallError(CallFailure.TIMEOUT, f"{where} timed out") from None
    except aiohttp.ClientError as error:
        raise WorkerCallError(CallFailure.UNAVAILABLE, f"{where} unreachable: {error}") from None

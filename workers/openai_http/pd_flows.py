"""The P/D flows: prefill for a decode worker, and decode with a prefill worker's KV.

    vLLM style    prefill_for_remote_decode   answer with kv_transfer_params
                  decode_with_remote_kv       pull the KV those params name, decode
    SGLang style  prefill_for_room            publish the prefill in a bootstrap room
                  decode_from_room            fetch the room, then decode_with_remote_kv

A decode with remote KV yields `KvReceived` before any token, and its output starts with
the prefill's first token (the client never saw the prefill's answer: a P/D proxy drops
it), which `num_completion_tokens` counts. Pull failures become HTTP statuses: a stale
handle 410 naming the field that carried it, an unreachable exporter 502 naming it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import (
    DecodeDone,
    DecodeParams,
    Engine,
    EngineKvGone,
    EngineKvPullFailed,
    KvReceived,
    PrefillResult,
    Tokens,
)
from triskel.workers.openai_http.bootstrap import BootstrapClient
from triskel.workers.openai_http.errors import ApiError, Json, engine_error
from triskel.workers.openai_http.flow_events import Finished, Flow, Job
from triskel.workers.openai_http.pd_vllm import (
    KvParamsError,
    RemoteKv,
    kv_transfer_params_json,
    parse_remote_kv,
)
from triskel.workers.openai_http.requests import BootstrapParams
from triskel.workers.openai_http.rooms import BootstrapRooms, PublishedPrefill, RoomFailed


@dataclass(frozen=True, slots=True)
class KvSource:
    """Where a remote KV came from, in the request's terms, for error messages."""

    description: str
    # The request field to blame when the KV is gone.
    stale_param: str


class PdFlows:
    """The P/D flows over one engine."""

    def __init__(
        self,
        engine: Engine,
        tokenizer: MockTokenizer,
        kv_hold_ms: int,
        bootstrap_client: BootstrapClient,
    ) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        self._kv_hold_ms = kv_hold_ms
        self._client = bootstrap_client

    async def prefill_for_remote_decode(self, job: Job) -> Flow:
        result = await self._prefill(job)
        params = kv_transfer_params_json(result)
        yield self._token(result.first_token_id)
        yield _prefill_finished(result, params, is_kv_exported=params is not None)

    async def prefill_for_room(
        self, job: Job, bootstrap: BootstrapParams, rooms: BootstrapRooms
    ) -> Flow:
        try:
            result = await self._prefill(job)
        except Exception as error:
            reply = engine_error(error, job.prompt_field, job.request_id)
            rooms.fail(bootstrap.room, RoomFailed(reply.message, reply.status, reply.param))
            raise
        except asyncio.CancelledError:
            rooms.fail(bootstrap.room, RoomFailed("the prefill request was cancelled"))
            raise
        params = kv_transfer_params_json(result)
        published = PublishedPrefill(
            num_prompt_tokens=len(job.prompt_token_ids),
            first_token_id=result.first_token_id,
            num_cached_tokens=result.num_cached_tokens,
            finish_reason=None if params is not None else result.finish_reason,
            kv_transfer_params=params,
        )
        rooms.publish(bootstrap.room, published)
        yield self._token(result.first_token_id)
        yield _prefill_finished(result, None, is_kv_exported=params is not None)

    async def decode_from_room(self, job: Job, bootstrap: BootstrapParams) -> Flow:
        published = await self._client.fetch(bootstrap)
        where = f"bootstrap room {bootstrap.room} of {bootstrap.address}"
        if published.num_prompt_tokens != len(job.prompt_token_ids):
            raise ApiError(
                400,
                f"bootstrap_room: {where} holds the KV of a {published.num_prompt_tokens}-token "
                f"prompt, this request's prompt has {len(job.prompt_token_ids)} tokens; the "
                "prefill and the decode worker must get the same request",
                "bootstrap_room",
            )
        if published.kv_transfer_params is None:  # the first token finished the request
            yield self._token(published.first_token_id)
            yield Finished(published.finish_reason or "stop", 1, published.num_cached_tokens)
            return
        try:
            remote = parse_remote_kv(published.kv_transfer_params, "kv_transfer_params")
        except KvParamsError as error:
            raise ApiError(502, f"{where} is malformed: {error}") from None
        source = KvSource(f"{remote.handle.address} (from {where})", "bootstrap_room")
        async for event in self.decode_with_remote_kv(job, remote, source):
            yield event

    async def decode_with_remote_kv(self, job: Job, remote: RemoteKv, source: KvSource) -> Flow:
        # The engine counts the first token in max_tokens and needs room for one more;
        # a 1-token request still pulls the KV (which frees the prefill worker's copy).
        params = DecodeParams(
            job.request_id,
            job.prompt_token_ids,
            max(2, job.max_tokens),
            job.ignore_eos,
            kv=remote.handle,
            first_token_id=remote.first_token_id,
            seed=job.seed,
        )
        events = self._engine.decode(params)
        is_first_sent = False
        try:
            async for event in events:
                if isinstance(event, DecodeDone):
                    num_tokens = 1 + event.num_generated_tokens
                    yield Finished(event.finish_reason, num_tokens, event.num_cached_tokens)
                    return
                if isinstance(event, KvReceived):
                    yield event
                if not is_first_sent:
                    is_first_sent = True
                    yield self._token(remote.first_token_id)
                    if job.max_tokens == 1:
                        yield Finished("length", 1, 0)
                        return
                if isinstance(event, Tokens):
                    yield event
        except EngineKvGone as error:
            raise ApiError(
                410,
                f"{source.stale_param}: the prompt's KV at {source.description} is gone "
                f"(expired, withdrawn or already pulled); prefill it again: {error}",
                source.stale_param,
            ) from None
        except EngineKvPullFailed as error:
            raise ApiError(
                502, f"pulling the prompt's KV from {source.description} failed: {error}"
            ) from None
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def _prefill(self, job: Job) -> PrefillResult:
        # max_tokens >= 2: with 1 the engine would finish the request at its first token
        # and free the KV the decode worker is about to pull.
        return await self._engine.prefill(
            job.request_id,
            job.prompt_token_ids,
            max(2, job.max_tokens),
            self._kv_hold_ms,
            seed=job.seed,
        )

    def _token(self, token_id: int) -> Tokens:
        return Tokens((token_id,), self._tokenizer.decode([token_id]))


def _prefill_finished(result: PrefillResult, params: Json | None, is_kv_exported: bool) -> Finished:
    # A prefill stops at its first token on purpose: "length", as vLLM answers max_tokens 1.
    return Finished(
        result.finish_reason or "length", 1, result.num_cached_tokens, params, is_kv_exported
    )

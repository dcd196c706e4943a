"""Which flow a generation request runs on this worker, by what it asks of it.

    kv_transfer_params.do_remote_decode    prefill, keep the KV for a pull     vLLM P/D, prefill
    kv_transfer_params.do_remote_prefill   pull the KV, decode                 vLLM P/D, decode
    bootstrap_room, publisher*             prefill, publish the room           SGLang P/D, prefill
    bootstrap_room, otherwise              fetch the room, pull, decode        SGLang P/D, decode
    none of them                           prefill and decode here (not on a prefill worker)

    * a prefill worker; or a unified one whose own bootstrap port the request names

The P/D flows live in `pd_flows`; what doesn't fit this worker is a 400 before any
flow starts. The flows that answer the client end at its stop strings; a prefill's
answer, which a P/D proxy drops, is its first token whatever the stops.
"""

from __future__ import annotations

from triskel.common.api import Role
from triskel.common.articles import with_article
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import DecodeDone, DecodeParams, Engine
from triskel.workers.openai_http.bootstrap import BootstrapClient
from triskel.workers.openai_http.errors import ApiError, Json
from triskel.workers.openai_http.flow_events import Finished, Flow, Job
from triskel.workers.openai_http.pd_flows import KvSource, PdFlows
from triskel.workers.openai_http.pd_vllm import (
    KvParamsError,
    KvTransferRole,
    RemoteKv,
    kv_transfer_role,
    parse_remote_kv,
)
from triskel.workers.openai_http.requests import BootstrapParams, GenerateRequest
from triskel.workers.openai_http.rooms import BootstrapRooms, RoomFailed
from triskel.workers.openai_http.stops import with_stops

_PREFILL_ROLES = (Role.PREFILL, Role.UNIFIED)
_DECODE_ROLES = (Role.DECODE, Role.UNIFIED)


class Flows:
    """Picks and starts the flow of each request over one engine."""

    def __init__(
        self,
        engine: Engine,
        tokenizer: MockTokenizer,
        kv_hold_ms: int,
        bootstrap_client: BootstrapClient,
        rooms: BootstrapRooms | None = None,
        bootstrap_port: int | None = None,
    ) -> None:
        self._engine = engine
        self._pd = PdFlows(engine, tokenizer, kv_hold_ms, bootstrap_client)
        self._rooms = rooms
        self._bootstrap_port = bootstrap_port

    def publishes_room(self, bootstrap: BootstrapParams) -> bool:
        """Whether this worker is the prefill side of an SGLang-style P/D request."""
        role = self._engine.description.role
        return role is Role.PREFILL or (
            role is Role.UNIFIED and bootstrap.port == self._bootstrap_port
        )

    def fail_room(self, request: GenerateRequest, error: ApiError) -> None:
        """Tell the decode worker waiting for this request's room that it will never come."""
        bootstrap = request.bootstrap
        if bootstrap is not None and self._rooms is not None and self.publishes_room(bootstrap):
            self._rooms.fail(bootstrap.room, RoomFailed(error.message, error.status, error.param))

    def select(self, request: GenerateRequest, job: Job) -> Flow:
        """The flow for `request`; ApiError (400) when the request does not fit this worker."""
        role = self._engine.description.role
        try:
            transfer = kv_transfer_role(request.kv_transfer_params)
        except KvParamsError as error:
            raise ApiError(400, str(error), error.field_name) from None
        if transfer is KvTransferRole.PRODUCE:
            _require_role(role, _PREFILL_ROLES, "kv_transfer_params.do_remote_decode")
            return self._pd.prefill_for_remote_decode(job)
        if transfer is KvTransferRole.CONSUME:
            _require_role(role, _DECODE_ROLES, "kv_transfer_params.do_remote_prefill")
            assert request.kv_transfer_params is not None
            remote = self._remote_kv(request.kv_transfer_params, job)
            where = f"{remote.handle.address} (kv_transfer_params.remote_host:remote_port)"
            source = KvSource(where, "kv_transfer_params.remote_request_id")
            return with_stops(self._pd.decode_with_remote_kv(job, remote, source), job.stop)
        if request.bootstrap is not None:
            if not self.publishes_room(request.bootstrap):
                return with_stops(self._pd.decode_from_room(job, request.bootstrap), job.stop)
            if self._rooms is None:
                raise ApiError(
                    400,
                    "bootstrap_port: this prefill worker has no bootstrap listener "
                    "(start it with --bootstrap-address)",
                    "bootstrap_port",
                )
            return self._pd.prefill_for_room(job, request.bootstrap, self._rooms)
        if role is Role.PREFILL:
            raise ApiError(
                400,
                "kv_transfer_params: a prefill worker only prefills for a decode worker; send "
                "kv_transfer_params.do_remote_decode=true (vLLM P/D) or bootstrap_host, "
                "bootstrap_port and bootstrap_room (SGLang P/D)",
                "kv_transfer_params",
            )
        return with_stops(self._local(job), job.stop)

    async def _local(self, job: Job) -> Flow:
        events = self._engine.decode(
            DecodeParams(
                job.request_id,
                job.prompt_token_ids,
                job.max_tokens,
                job.ignore_eos,
                seed=job.seed,
            )
        )
        try:
            async for event in events:
                if isinstance(event, DecodeDone):
                    yield Finished(
                        event.finish_reason, event.num_generated_tokens, event.num_cached_tokens
                    )
                    return
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    def _remote_kv(self, params: Json, job: Job) -> RemoteKv:
        """The handle of a do_remote_prefill request, checked against this worker."""
        try:
            remote = parse_remote_kv(params)
        except KvParamsError as error:
            raise ApiError(400, str(error), error.field_name) from None
        connector = self._engine.description.kv_connector
        if remote.handle.connector != connector:
            field = "kv_transfer_params.triskel.connector"
            raise ApiError(
                400,
                f"{field}: the KV is on a {remote.handle.connector!r} connector, "
                f"this worker uses {connector!r}",
                field,
            )
        if remote.handle.num_tokens != len(job.prompt_token_ids):
            field = "kv_transfer_params.triskel.num_tokens"
            raise ApiError(
                400,
                f"{field}: the prefill computed the KV of {remote.handle.num_tokens} tokens, "
                f"this request's prompt has {len(job.prompt_token_ids)}; send the decode "
                "worker the prefill's request",
                field,
            )
        return remote


def _require_role(role: Role, roles: tuple[Role, ...], param: str) -> None:
    if role not in roles:
        served = " or ".join(str(r) for r in roles)
        raise ApiError(
            400,
            f"{param}: {with_article(role)} worker cannot serve this; "
            f"{with_article(served)} worker can",
            param,
        )

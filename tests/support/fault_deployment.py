"""A deployment to break: workers as real processes (so one can be killed or frozen), the
router in-process (so the test sees its log), and clients that say how each request ended.

Every request a fault test sends must end within its deadline in one of two ways:
answered (a whole answer: a reply with choices, or a stream up to [DONE]) or a clear
error (a 5xx whose JSON body has a message, or an SSE error event with one). Anything
else (a hang, a stream cut without an error, a body that is not JSON) fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from triskel.cli.supervisor import Child, Supervisor
from triskel.cli.up import worker_configs, write_kv_auth_key
from triskel.cli.up_config import parse_up_config
from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router
from triskel.v1 import worker_pb2, worker_pb2_grpc

ROUTER_READY_TIMEOUT_S = 60.0
# Every client request's bound: a fault may cost a retry, never a hang.
REQUEST_DEADLINE_S = 30.0


@dataclass
class Deployment:
    base_url: str
    children: dict[str, Child]
    frozen: set[int] = field(default_factory=set)

    def kill(self, worker_id: str) -> None:
        os.kill(self.children[worker_id].pid, signal.SIGKILL)

    def freeze(self, worker_id: str) -> None:
        """SIGSTOP: the worker hangs (its sockets stay open) rather than dies."""
        pid = self.children[worker_id].pid
        os.kill(pid, signal.SIGSTOP)
        self.frozen.add(pid)

    def thaw(self, worker_id: str) -> None:
        """SIGCONT: a frozen worker runs again."""
        pid = self.children[worker_id].pid
        os.kill(pid, signal.SIGCONT)
        self.frozen.discard(pid)

    def thaw_all(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen.clear()


@contextlib.asynccontextmanager
async def process_deployment(
    pools_yaml: str, redis_url: str | None = None
) -> AsyncIterator[Deployment]:
    """The pools' workers as child processes sharing one KV key, and a router on them."""
    supervisor = Supervisor()
    stop = asyncio.Event()
    router_task: asyncio.Task[None] | None = None
    deployment: Deployment | None = None
    with tempfile.TemporaryDirectory(prefix="triskel-faults-") as key_folder:
        key_file = str(write_kv_auth_key(Path(key_folder) / "kv-auth-key"))
        try:
            children = {}
            for worker in worker_configs(parse_up_config(pools_yaml, "<test>")):
                worker = worker.model_copy(update={"kv_auth_key_file": key_file})
                children[worker.worker_id] = await supervisor.start(
                    worker.worker_id, "worker", worker.model_dump(mode="json", by_alias=True)
                )
            deployment = Deployment("", children)
            ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
            config = RouterProcessConfig(
                http_address="127.0.0.1:0",
                grpc_address="127.0.0.1:0",
                workers=[c.ready["grpc"] for c in children.values()],
                redis_url=redis_url,
            )
            router_task = asyncio.create_task(run_router(config, ready.set_result, stop))
            endpoints = await asyncio.wait_for(ready, ROUTER_READY_TIMEOUT_S)
            deployment.base_url = f"http://{endpoints.http_address}"
            yield deployment
        finally:
            if deployment is not None:
                deployment.thaw_all()  # a frozen worker cannot act on SIGTERM
            stop.set()
            if router_task is not None:
                await asyncio.gather(router_task, return_exceptions=True)
            await supervisor.stop_all()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request ended: "answered" or "error", with what the client saw."""

    kind: str
    detail: str = ""


ANSWERED = "answered"
ERROR = "error"


async def outcome_of(
    base_url: str,
    body: dict[str, Any],
    on_event: Callable[[int], None] = lambda num_events: None,
    deadline_s: float = REQUEST_DEADLINE_S,
) -> Outcome:
    """Sends `body` (streamed if it says so); AssertionError unless it ends clearly within
    `deadline_s`. `on_event` gets the stream's count of events so far at each event."""
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    try:
        async with asyncio.timeout(deadline_s):
            return await _send(f"{base_url}{path}", body, on_event)
    except TimeoutError:
        raise AssertionError(f"request hung for {deadline_s} s: {body}") from None


async def _send(url: str, body: dict[str, Any], on_event: Callable[[int], None]) -> Outcome:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        if response.status != 200:
            return _error_reply(response.status, await response.read())
        if not body.get("stream"):
            reply = json.loads(await response.read())
            assert reply["choices"][0]["finish_reason"] in ("stop", "length"), reply
            return Outcome(ANSWERED)
        num_events = 0
        try:
            async for raw in response.content:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    return Outcome(ANSWERED, f"{num_events} events")
                event = json.loads(line[len("data: ") :])
                num_events += 1
                on_event(num_events)
                if "error" in event:
                    assert event["error"]["message"], event
                    return Outcome(ERROR, event["error"]["message"])
        except aiohttp.ClientPayloadError as error:
            raise AssertionError(f"stream cut after {num_events} events: {error}") from None
        raise AssertionError(f"stream ended after {num_events} events without [DONE] or an error")


def _error_reply(status: int, data: bytes) -> Outcome:
    assert status >= 500, f"a fault is not the client's mistake: {status} {data[:300]!r}"
    message = json.loads(data)["error"]["message"]
    assert message, data
    return Outcome(ERROR, f"{status}: {message}")


async def busy_worker(deployment: Deployment, worker_ids: list[str], timeout_s: float = 30) -> str:
    """The first of `worker_ids` whose own stats show a request queued or running."""

    def is_busy(load: worker_pb2.WorkerStats) -> bool:
        return bool(load.num_running_requests or load.num_waiting_requests)

    return await first_worker_where(deployment, worker_ids, is_busy, timeout_s)


async def first_worker_where(
    deployment: Deployment,
    worker_ids: list[str],
    condition: Callable[[worker_pb2.WorkerStats], bool],
    timeout_s: float = 30,
) -> str:
    """The first of `worker_ids` whose stats (watched every 5 ms) meet `condition`."""
    async with contextlib.AsyncExitStack() as stack:
        streams = []
        for worker_id in worker_ids:
            address = deployment.children[worker_id].ready["grpc"]
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(address))
            stub = worker_pb2_grpc.WorkerStub(channel)
            streams.append(stub.StreamStats(worker_pb2.StreamStatsRequest(interval_ms=5)))
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for worker_id, stream in zip(worker_ids, streams, strict=True):
                        if condition(await stream.read()):
                            return worker_id
        except TimeoutError:
            raise AssertionError(f"no worker of {worker_ids} got there in {timeout_s} s") from None
        finally:
            for stream in streams:
                stream.cancel()

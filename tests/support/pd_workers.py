"""Prefill, decode and unified mock workers serving HTTP, and the requests P/D proxies
make of them: vLLM style (as vllm-router drives it) and SGLang style (as smg does)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai

from support.local_workers import LocalWorker, local_worker, mock_pool, post_json, worker_metric

PROMPT = "The kernel streams every cache block through the router"
MESSAGES = [{"role": "user", "content": "Which river runs under the stone bridge?"}]
# ignore_eos: each output is exactly max_tokens long, whatever the prompt's natural end.
COMPLETION = {"model": "m", "prompt": PROMPT, "max_tokens": 12, "ignore_eos": True}
CHAT = {"model": "m", "messages": MESSAGES, "max_tokens": 10, "ignore_eos": True}
# What vllm-router adds to the request it sends the prefill worker.
VLLM_PREFILL_FIELDS = {
    "stream": False,
    "max_tokens": 1,
    "min_tokens": 1,
    "kv_transfer_params": {
        "do_remote_decode": True,
        "do_remote_prefill": False,
        "remote_engine_id": None,
        "remote_block_ids": None,
        "remote_host": None,
        "remote_port": None,
    },
}

KV_RECEIVED = worker_metric("triskel_worker_kv_received_bytes_total")
KV_EXPORTED = worker_metric("triskel_worker_kv_exported_requests_total")


@dataclass(slots=True)
class Cluster:
    """A prefill worker (with a bootstrap listener), a decode worker, and a unified worker
    whose answers are the reference: outputs are deterministic per prompt."""

    prefill: LocalWorker
    decode: LocalWorker
    unified: LocalWorker

    @property
    def bootstrap_port(self) -> int:
        assert self.prefill.endpoints.bootstrap is not None
        return int(self.prefill.endpoints.bootstrap.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def cluster(connector: str = "tcp", bootstrap_wait_s: float = 10) -> AsyncIterator[Cluster]:
    """The three workers on loopback port 0; prefill and decode use `connector`."""
    http = {"http_address": "127.0.0.1:0"}
    async with (
        # drain_timeout_s 0: a test may leave KV held for a pull that never comes.
        local_worker(
            mock_pool("prefill", connector),
            "prefill-0",
            bootstrap_address="127.0.0.1:0",
            drain_timeout_s=0,
            **http,
        ) as prefill,
        local_worker(
            mock_pool("decode", connector), "decode-0", bootstrap_wait_s=bootstrap_wait_s, **http
        ) as decode,
        local_worker(mock_pool("unified"), "unified-0", **http) as unified,
    ):
        yield Cluster(prefill, decode, unified)


def path_of(body: dict[str, Any]) -> str:
    return "/v1/chat/completions" if "messages" in body else "/v1/completions"


async def reference_text(workers: Cluster, body: dict[str, Any]) -> str:
    """What a unified worker answers: outputs are deterministic per prompt."""
    status, reply = await post_json(workers.unified.http_url + path_of(body), body)
    assert status == 200, reply
    return text_of(reply)


def text_of(reply: dict[str, Any]) -> str:
    choice = reply["choices"][0]
    return str(choice["message"]["content"] if "message" in choice else choice["text"])


async def prefill_for_vllm(workers: Cluster, body: dict[str, Any]) -> dict[str, Any]:
    """vllm-router's step 1; returns the prefill's whole answer."""
    status, reply = await post_json(
        workers.prefill.http_url + path_of(body), {**body, **VLLM_PREFILL_FIELDS}
    )
    assert status == 200, reply
    return dict(reply)


async def stream_text(worker: LocalWorker, body: dict[str, Any]) -> tuple[str, int, str]:
    """Streams `body` from `worker` with the official client: text, completion tokens, finish."""
    extra = {
        k: v for k, v in body.items() if k not in ("model", "prompt", "messages", "max_tokens")
    }
    async with openai.AsyncOpenAI(
        base_url=f"{worker.http_url}/v1", api_key="unused", max_retries=0
    ) as client:
        common: dict[str, Any] = {
            "model": "m",
            "max_tokens": body["max_tokens"],
            "stream": True,
            "stream_options": {"include_usage": True},
            "extra_body": extra,
        }
        if "messages" in body:
            chat = await client.chat.completions.create(messages=body["messages"], **common)
            chunks: list[Any] = [chunk async for chunk in chat]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            completion = await client.completions.create(prompt=body["prompt"], **common)
            chunks = [chunk async for chunk in completion]
            text = "".join(c.choices[0].text for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    return text, chunks[-1].usage.completion_tokens, finish


def kv_bytes(params: dict[str, Any]) -> int:
    """The bytes a pull of these params moves: every block (the decode worker caches none)."""
    ours = params["triskel"]
    return len(ours["block_checksums"]) * int(ours["block_bytes"])


def sglang_body(body: dict[str, Any], port: int | None) -> dict[str, Any]:
    """smg's P/D fields: the same body goes to the prefill and the decode worker."""
    room = random.getrandbits(64)
    return {**body, "bootstrap_host": "127.0.0.1", "bootstrap_port": port, "bootstrap_room": room}

"""The soak's clients: mixed requests sent open loop, each classified by how it ended.

A request ends in one of four ways (docs/reliability.md):
  answered        a whole reply, or a stream up to [DONE]
  failed_early    an error before the client received a first token (HTTP 5xx, or a
                  stream whose first event is an error): the request was lost although
                  nothing had been sent to the client, which the router must avoid by
                  retrying on another worker
  failed_streaming  an error event after tokens had reached the client (clear, but the
                  client has a partial answer: the router cannot retry it)
  hung            no end within the deadline
Anything else (a 4xx, a body that is not JSON, a stream cut without an error) is
`broken`: the router answered a fault with something a client cannot act on.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

ANSWERED = "answered"
FAILED_EARLY = "failed_early"
FAILED_STREAMING = "failed_streaming"
HUNG = "hung"
BROKEN = "broken"
OUTCOMES = (ANSWERED, FAILED_EARLY, FAILED_STREAMING, HUNG, BROKEN)

_SYSTEM_PROMPTS = [
    f"You are assistant number {n}. Answer briefly and cite the manual where you can. " * 12
    for n in range(6)
]
_TOPICS = ["rivers", "bridges", "compilers", "tides", "orchards", "lighthouses", "glaciers"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    elapsed_s: float
    detail: str = ""


def mixed_body(rng: random.Random, model: str, index: int) -> dict[str, Any]:
    """One request of the mix: chat or completion, streamed or not, a shared system
    prompt (prefix reuse) or none, 10–400 words of question, 8–160 tokens out."""
    question = f"Question {index}: tell me about {rng.choice(_TOPICS)}. " + " ".join(
        rng.choice(_TOPICS) for _ in range(rng.randint(10, 400))
    )
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": rng.randint(8, 160),
        "ignore_eos": True,
        "stream": rng.random() < 0.5,
    }
    system = rng.choice(_SYSTEM_PROMPTS) if rng.random() < 0.7 else None
    if rng.random() < 0.5:
        messages = [{"role": "user", "content": question}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        body["messages"] = messages
    else:
        body["prompt"] = (system or "") + question
    return body


async def send(
    session: aiohttp.ClientSession, base_url: str, body: dict[str, Any], deadline_s: float
) -> Outcome:
    loop = asyncio.get_running_loop()
    started = loop.time()
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    try:
        async with asyncio.timeout(deadline_s):
            kind, detail = await _exchange(session, f"{base_url}{path}", body)
    except TimeoutError:
        kind, detail = HUNG, f"no end in {deadline_s} s"
    except (aiohttp.ClientError, ValueError, KeyError) as error:
        kind, detail = BROKEN, f"{type(error).__name__}: {error}"
    return Outcome(kind, loop.time() - started, detail[:200])


async def _exchange(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[str, str]:
    async with session.post(url, json=body) as response:
        data_if_error = b"" if response.status == 200 else await response.read()
        if response.status >= 500:
            message = json.loads(data_if_error)["error"]["message"]
            return FAILED_EARLY, f"{response.status}: {message}"
        if response.status != 200:
            return BROKEN, f"{response.status}: {data_if_error[:200]!r}"
        if not body["stream"]:
            reply = json.loads(await response.read())
            return ANSWERED, reply["choices"][0]["finish_reason"]
        num_tokens = 0
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                return ANSWERED, f"{num_tokens} events"
            event = json.loads(line[len("data: ") :])
            if "error" in event:
                kind = FAILED_STREAMING if num_tokens else FAILED_EARLY
                return kind, str(event["error"]["message"])
            num_tokens += _has_text(event)
        return BROKEN, f"stream cut after {num_tokens} events without [DONE] or an error"


def _has_text(event: dict[str, Any]) -> bool:
    """A chunk carrying generated text (not a role-only or usage-only chunk)."""
    for choice in event.get("choices", []):
        if choice.get("text") or choice.get("delta", {}).get("content"):
            return True
    return False

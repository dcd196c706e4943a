"""The shipped examples run as a user would run them, driven by the official OpenAI client."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import grpc
import openai
import pytest
import yaml

from triskel.v1 import router_pb2, router_pb2_grpc

from support.processes import read_until, start_triskel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SYSTEM = "You are a careful assistant for a serving cluster. " * 20


def on_free_ports(example: str, tmp_path: Path) -> Path:
    """The example file with the router on port 0, so tests never collide."""
    document = yaml.safe_load((EXAMPLES / example).read_text())
    document["router"] = {"http": "127.0.0.1:0", "grpc": "127.0.0.1:0"}
    path = tmp_path / example
    path.write_text(yaml.safe_dump(document))
    return path


async def grpc_text(
    address: str, messages: list[openai.types.chat.ChatCompletionMessageParam]
) -> str:
    chat = router_pb2.ChatMessages(
        messages=[
            router_pb2.ChatMessage(
                role=str(m["role"]), content=[router_pb2.ContentPart(text=str(m["content"]))]
            )
            for m in messages
        ]
    )
    request = router_pb2.GenerateRequest(model="llama-3.1-8b", chat=chat, max_tokens=12)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        return "".join([r.chunk.text async for r in stub.Generate(request) if r.HasField("chunk")])


@pytest.mark.asyncio
async def test_dualmap_example_serves_the_openai_client(tmp_path: Path) -> None:
    process = await start_triskel(["up", "-f", str(on_free_ports("dualmap.yaml", tmp_path))])
    try:
        ready = (await read_until(process, "Triskel is ready"))[-1]
        match = re.search(r"http://(127\.0\.0\.1:\d+)/v1", ready)
        assert match, ready
        client = openai.AsyncOpenAI(base_url=f"http://{match.group(1)}/v1", api_key="unused")
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What does DualMap do?"},
        ]
        whole = await client.chat.completions.create(
            model="llama-3.1-8b", messages=messages, max_tokens=12
        )
        text = whole.choices[0].message.content
        assert text and whole.usage and whole.usage.completion_tokens == 12
        stream = await client.chat.completions.create(
            model="llama-3.1-8b", messages=messages, max_tokens=12, stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        # The same prompt gives the same tokens, streamed or not.
        assert "".join(pieces) == text
        models = await client.models.list()
        assert [m.id for m in models.data] == ["llama-3.1-8b"]
        await client.close()
        # The same example serves gRPC: the same prompt streams the same text.
        grpc_match = re.search(r"grpc (127\.0\.0\.1:\d+)", ready)
        assert grpc_match, ready
        assert await grpc_text(grpc_match.group(1), messages) == text
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0

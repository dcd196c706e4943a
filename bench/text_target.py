"""Trace requests as text prompts, and a bench target that sends them as text.

`triskel bench` sends prompts as token ids; smg refuses that (its `prompt` is a string
or a list of strings), and a prefix-aware peer matches prompts by their text or by
the ids its workers return for the text. So each trace request's deterministic
token ids are drawn from the mock tokenizer's word vocabulary, where
`decode` then `encode` gives the same ids back: every router and worker sees the
text, and the workers cache exactly the blocks the trace shares.

    trace request ──prompt_token_ids(vocab = words)──► ids ──decode──► " the of may ..."
    worker: encode(text) == ids, so shared prefix blocks hash alike on every worker
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import orjson

from triskel.common.sse import SseDecoder
from triskel.common.tokenizer import MockTokenizer
from triskel.simulator.bench.http_target import CompletionStream
from triskel.simulator.bench.outcome import Outcome, RequestFailed
from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.bench.target import Clock, TargetError
from triskel.traces.prompt_tokens import prompt_token_ids
from triskel.traces.types import Trace

LIST_MODELS_TIMEOUT_S = 10.0
_MAX_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class TextPlan:
    """What to send: the requests (times, lengths, ids) and each one's prompt text."""

    requests: list[BenchRequest]
    texts: Mapping[int, str]


def plan_text_requests(trace: Trace, rate_scale: float = 1.0, salt: str = "") -> TextPlan:
    """The trace's requests with word-vocabulary prompts, arrivals divided by `rate_scale`.

    Built before the clock starts, like `plan_requests`, so building never delays a send.
    """
    tokenizer = MockTokenizer()
    requests, texts = [], {}
    for request in trace.scaled(rate_scale).requests:
        ids = prompt_token_ids(request, vocab_size=tokenizer.num_word_tokens, salt=salt)
        requests.append(
            BenchRequest(
                index=request.index,
                send_at_s=request.arrival_s,
                prompt_token_ids=ids,
                num_output_tokens=request.num_output_tokens,
            )
        )
        texts[request.index] = tokenizer.decode(ids)
    return TextPlan(requests, texts)


def plan_probe_requests(
    count: int, rate_per_s: float, num_words: int, num_output_tokens: int, tag: str
) -> TextPlan:
    """`count` small distinct prompts at a fixed rate: the router-added-latency probe.

    `tag` keeps one probe's prompts apart from another's (no prefix-cache hits between).
    The first request leaves one gap after the start: sent right after an earlier
    response on the same kept-alive connection, smg answers ~40 ms late.
    """
    tokenizer = MockTokenizer()
    requests, texts = [], {}
    for index in range(count):
        text = f" {tag} {index}" + " the" * num_words
        ids = tokenizer.encode(text)
        requests.append(BenchRequest(index, (index + 1) / rate_per_s, ids, num_output_tokens))
        texts[index] = text
    return TextPlan(requests, texts)


class TextCompletionTarget:
    """Implements `triskel.simulator.bench.target.Target`: streamed `/v1/completions`
    with text prompts, exactly the planned output length (`ignore_eos`), usage asked for."""

    def __init__(self, base_url: str, texts: Mapping[int, str]) -> None:
        self._base_url = base_url
        # The prompt of each request index; replaceable between replays on one session.
        self.texts = texts
        self._session: aiohttp.ClientSession | None = None

    async def list_models(self) -> list[str]:
        url = f"{self._base_url}/v1/models"
        timeout = aiohttp.ClientTimeout(total=LIST_MODELS_TIMEOUT_S)
        try:
            async with self._client().get(url, timeout=timeout) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TargetError(f"cannot reach {url}: {error or type(error).__name__}") from None
        if status != 200:
            raise TargetError(f"{url}: HTTP {status}: {body[:_MAX_ERROR_CHARS]!r}")
        try:
            models = orjson.loads(body).get("data")
        except (orjson.JSONDecodeError, AttributeError):
            models = None
        if not isinstance(models, list):
            raise TargetError(f"{url}: not an OpenAI model list")
        return [str(m.get("id")) for m in models if isinstance(m, dict)]

    async def generate(self, request: BenchRequest, model: str, clock: Clock) -> Outcome:
        body = orjson.dumps(
            {
                "model": model,
                "prompt": self.texts[request.index],
                "max_tokens": request.num_output_tokens,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        stream, decoder = CompletionStream(), SseDecoder()
        url = f"{self._base_url}/v1/completions"
        headers = {"Content-Type": "application/json"}
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    text = (await response.text())[:_MAX_ERROR_CHARS].strip()
                    raise RequestFailed(f"HTTP {response.status}: {text}")
                async for chunk in response.content.iter_any():
                    now_s = clock()
                    for data in decoder.feed(chunk):
                        stream.on_event(data, now_s)
        except aiohttp.ClientError as error:
            raise RequestFailed(f"connection failed: {error}") from None
        return stream.outcome()

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

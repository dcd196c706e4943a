"""Hypothesis strategies for the gRPC messages clients send: the router's
`GenerateRequest` and the worker's Prefill, Decode, Encode and SwitchRole requests.

Every field is drawn, with the values that break code most often: extreme integers,
empty and huge strings (huge within `MAX_TEXT_CHARS`, far below gRPC's 4 MiB message
cap), odd unicode (surrogate-free: protobuf refuses to encode lone surrogates) and many
image parts. A KV handle's address is always on loopback or unparseable, so a worker
asked to pull from it never reaches beyond this machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message
from hypothesis import strategies as st

from triskel.v1 import router_pb2, worker_pb2

M = TypeVar("M", bound=Message)
T = TypeVar("T")

# A huge string stays well under gRPC's default 4 MiB receive limit.
MAX_TEXT_CHARS = 200_000
MODEL = "m"

UINT32 = st.one_of(
    st.sampled_from([0, 1, 2, 255, 256, 4096, 8192, 8193, 65535, 131072, 2**31 - 1, 2**32 - 1]),
    st.integers(0, 2**32 - 1),
)
INT64 = st.one_of(
    st.sampled_from([0, -1, 1, -(2**63), 2**63 - 1]), st.integers(-(2**63), 2**63 - 1)
)
UINT64 = st.one_of(st.sampled_from([0, 1, 2**64 - 1]), st.integers(0, 2**64 - 1))

# Characters protobuf can carry: any code point but the surrogates.
ODD_CHARACTERS = st.characters(exclude_categories=["Cs"])
SPECIAL_STRINGS = st.sampled_from(
    ["", " ", "\x00", "\n\r\t", "\u202e\u200b\ufeff", "🦜" * 7, "a" * 257, "%s%n{0}", "../../etc"]
)


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Empty, short random, special or huge (one character repeated) strings."""
    huge = st.builds(lambda c, n: c * n, ODD_CHARACTERS, st.integers(1, MAX_TEXT_CHARS))
    return st.one_of(st.text(ODD_CHARACTERS, max_size=max_size), SPECIAL_STRINGS, huge)


def short_texts() -> st.SearchStrategy[str]:
    return st.one_of(st.text(ODD_CHARACTERS, max_size=12), SPECIAL_STRINGS)


def image_parts(hostile: bool = True) -> st.SearchStrategy[router_pb2.ImagePart]:
    urls = st.sampled_from(["https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="])
    sides = st.sampled_from([0, 1, 28, 336, 1024])
    if hostile:
        urls, sides = st.one_of(urls, short_texts()), st.one_of(sides, UINT32)
    return st.builds(router_pb2.ImagePart, url=urls, width_px=sides, height_px=sides)


def content_parts(hostile: bool = True) -> st.SearchStrategy[router_pb2.ContentPart]:
    parts = st.one_of(
        st.builds(router_pb2.ContentPart, text=texts(max_size=200)),
        st.builds(router_pb2.ContentPart, image=image_parts(hostile)),
    )
    # Neither oneof member set.
    return st.one_of(parts, st.just(router_pb2.ContentPart())) if hostile else parts


def chat_messages(hostile: bool = True) -> st.SearchStrategy[router_pb2.ChatMessage]:
    roles = st.sampled_from(["system", "developer", "user", "assistant", "tool"])
    if hostile:
        roles = st.one_of(roles, short_texts())
    # Up to 20 parts when hostile: many image parts in one message, beyond the 8-image limit.
    parts = st.lists(
        content_parts(hostile), min_size=0 if hostile else 1, max_size=20 if hostile else 3
    )
    return st.builds(router_pb2.ChatMessage, role=roles, content=parts)


# The fields of a GenerateRequest a case may draw from the hostile range.
REQUEST_FIELDS = ("model", "max_tokens", "request_id", "stop", "input", "seed")


@st.composite
def generate_requests(draw: st.DrawFn) -> router_pb2.GenerateRequest:
    """A `GenerateRequest` with every field drawn: most fields from what a client would
    send, up to two from the hostile range (so cases get past the first check)."""
    hostile = draw(st.sets(st.sampled_from(REQUEST_FIELDS), max_size=2))

    def field(name: str, usual: st.SearchStrategy[T], odd: st.SearchStrategy[T]) -> T:
        return draw(odd if name in hostile else usual)

    ascii_ids = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=128)
    request = router_pb2.GenerateRequest(
        model=field("model", st.just(MODEL), short_texts()),
        max_tokens=field("max_tokens", st.integers(1, 40), UINT32),
        request_id=field("request_id", ascii_ids, st.text(ODD_CHARACTERS, max_size=200)),
        ignore_eos=draw(st.booleans()),
        stop=field(
            "stop",
            st.lists(st.text(ODD_CHARACTERS, min_size=1, max_size=8), max_size=4),
            st.lists(short_texts(), max_size=6),
        ),
    )
    is_odd_input = "input" in hostile
    input_kinds = ["prompt", "chat", "prompt_token_ids", *([None] if is_odd_input else [])]
    input_kind = draw(st.sampled_from(input_kinds))
    if input_kind == "prompt":
        request.prompt = draw(texts(max_size=200) if is_odd_input else _prompts())
    elif input_kind == "chat":
        messages = st.lists(chat_messages(is_odd_input), min_size=1, max_size=4)
        if is_odd_input:
            messages = st.lists(chat_messages(), max_size=6)
        request.chat.CopyFrom(router_pb2.ChatMessages(messages=draw(messages)))
    elif input_kind == "prompt_token_ids":
        ids = token_id_lists() if is_odd_input else st.lists(st.integers(0, 128_000), min_size=1)
        request.prompt_token_ids.CopyFrom(router_pb2.TokenIds(ids=draw(ids)))
    if draw(st.booleans()):
        request.seed = draw(INT64)
    return request


def _prompts() -> st.SearchStrategy[str]:
    """Prompts a client would send: odd characters, mostly short, sometimes long."""
    long = st.builds(lambda c, n: c * n, ODD_CHARACTERS, st.integers(1, 20_000))
    return st.one_of(st.text(ODD_CHARACTERS, min_size=1, max_size=200), long)


def _repeated_ids() -> st.SearchStrategy[list[int]]:
    """Long token id lists (up to past a 131,072-token context window)."""
    return st.builds(lambda i, n: [i] * n, st.integers(0, 40_000), st.integers(1, 140_000))


def token_id_lists() -> st.SearchStrategy[list[int]]:
    return st.one_of(st.lists(UINT32, max_size=100), _repeated_ids())


def prefill_requests() -> st.SearchStrategy[worker_pb2.PrefillRequest]:
    return st.builds(
        _with_optional_seed(worker_pb2.PrefillRequest),
        request_id=short_texts(),
        token_ids=token_id_lists(),
        max_tokens=UINT32,
        kv_hold_ms=UINT32,
        seed=st.none() | INT64,
    )


# Loopback addresses (one likely closed, one likely not a KV listener) and unparseable ones.
KV_ADDRESSES = st.sampled_from(
    ["127.0.0.1:1", "127.0.0.1:9", "[::1]:1", "", "nohost", ":", "127.0.0.1:", "127.0.0.1:x"]
)


def kv_handles() -> st.SearchStrategy[worker_pb2.KvHandle]:
    return st.builds(
        worker_pb2.KvHandle,
        request_id=short_texts(),
        worker_id=short_texts(),
        connector=st.one_of(st.sampled_from(["tcp", "mooncake", "nccl"]), short_texts()),
        address=KV_ADDRESSES,
        num_tokens=UINT32,
        block_bytes=UINT64,
        block_checksums=st.lists(UINT64, max_size=40),
        params=st.dictionaries(short_texts(), short_texts(), max_size=3),
        capability=short_texts(),
    )


def decode_requests() -> st.SearchStrategy[worker_pb2.DecodeRequest]:
    return st.builds(
        _with_optional_seed(worker_pb2.DecodeRequest),
        request_id=short_texts(),
        token_ids=token_id_lists(),
        max_tokens=st.one_of(st.integers(0, 40), UINT32),
        kv=st.none() | kv_handles(),
        first_token_id=UINT32,
        ignore_eos=st.booleans(),
        seed=st.none() | INT64,
    )


def encode_requests() -> st.SearchStrategy[worker_pb2.EncodeRequest]:
    return st.builds(
        worker_pb2.EncodeRequest,
        request_id=short_texts(),
        images=st.lists(image_parts(), max_size=24),
    )


def switch_role_requests() -> st.SearchStrategy[worker_pb2.SwitchRoleRequest]:
    roles = st.one_of(st.sampled_from(["prefill", "decode", "unified", "encode"]), short_texts())
    # A short drain: the fuzzer's own requests may still be in flight.
    return st.builds(worker_pb2.SwitchRoleRequest, role=roles, drain_timeout_ms=st.integers(0, 200))


def _with_optional_seed(message_type: Callable[..., M]) -> Callable[..., M]:
    """A constructor that leaves `seed` unset (not 0) when given None, and `kv` likewise."""

    def build(**fields: object) -> M:
        return message_type(**{k: v for k, v in fields.items() if v is not None})

    return build

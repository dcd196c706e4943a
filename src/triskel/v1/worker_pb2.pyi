from triskel.v1 import router_pb2 as _router_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KvMedium(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KV_MEDIUM_GPU: _ClassVar[KvMedium]
    KV_MEDIUM_HOST: _ClassVar[KvMedium]
KV_MEDIUM_GPU: KvMedium
KV_MEDIUM_HOST: KvMedium

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("worker_id", "role", "model", "profile", "block_size_tokens", "max_context_tokens", "kv_connector", "num_kv_blocks", "hash_salt", "frame_port")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KV_CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    NUM_KV_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    HASH_SALT_FIELD_NUMBER: _ClassVar[int]
    FRAME_PORT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    role: str
    model: str
    profile: str
    block_size_tokens: int
    max_context_tokens: int
    kv_connector: str
    num_kv_blocks: int
    hash_salt: str
    frame_port: int
    def __init__(self, worker_id: _Optional[str] = ..., role: _Optional[str] = ..., model: _Optional[str] = ..., profile: _Optional[str] = ..., block_size_tokens: _Optional[int] = ..., max_context_tokens: _Optional[int] = ..., kv_connector: _Optional[str] = ..., num_kv_blocks: _Optional[int] = ..., hash_salt: _Optional[str] = ..., frame_port: _Optional[int] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("request_id", "images")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    images: _containers.RepeatedCompositeFieldContainer[_router_pb2.ImagePart]
    def __init__(self, request_id: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_router_pb2.ImagePart, _Mapping]]] = ...) -> None: ...

class EncodeResponse(_message.Message):
    __slots__ = ("images", "elapsed_ms")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[EncodedImage]
    elapsed_ms: float
    def __init__(self, images: _Optional[_Iterable[_Union[EncodedImage, _Mapping]]] = ..., elapsed_ms: _Optional[float] = ...) -> None: ...

class EncodedImage(_message.Message):
    __slots__ = ("token_ids",)
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class PrefillRequest(_message.Message):
    __slots__ = ("request_id", "token_ids", "max_tokens", "kv_hold_ms", "seed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KV_HOLD_MS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    max_tokens: int
    kv_hold_ms: int
    seed: int
    def __init__(self, request_id: _Optional[str] = ..., token_ids: _Optional[_Iterable[int]] = ..., max_tokens: _Optional[int] = ..., kv_hold_ms: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class PrefillResponse(_message.Message):
    __slots__ = ("first_token_id", "first_token_text", "num_cached_tokens", "kv", "elapsed_ms", "finish_reason")
    FIRST_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_TEXT_FIELD_NUMBER: _ClassVar[int]
    NUM_CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KV_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    first_token_id: int
    first_token_text: str
    num_cached_tokens: int
    kv: KvHandle
    elapsed_ms: float
    finish_reason: str
    def __init__(self, first_token_id: _Optional[int] = ..., first_token_text: _Optional[str] = ..., num_cached_tokens: _Optional[int] = ..., kv: _Optional[_Union[KvHandle, _Mapping]] = ..., elapsed_ms: _Optional[float] = ..., finish_reason: _Optional[str] = ...) -> None: ...

class KvHandle(_message.Message):
    __slots__ = ("request_id", "worker_id", "connector", "address", "num_tokens", "block_bytes", "block_checksums", "params", "capability")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTOR_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_BYTES_FIELD_NUMBER: _ClassVar[int]
    BLOCK_CHECKSUMS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    worker_id: str
    connector: str
    address: str
    num_tokens: int
    block_bytes: int
    block_checksums: _containers.RepeatedScalarFieldContainer[int]
    params: _containers.ScalarMap[str, str]
    capability: str
    def __init__(self, request_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., connector: _Optional[str] = ..., address: _Optional[str] = ..., num_tokens: _Optional[int] = ..., block_bytes: _Optional[int] = ..., block_checksums: _Optional[_Iterable[int]] = ..., params: _Optional[_Mapping[str, str]] = ..., capability: _Optional[str] = ...) -> None: ...

class DecodeRequest(_message.Message):
    __slots__ = ("request_id", "token_ids", "max_tokens", "kv", "first_token_id", "ignore_eos", "seed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KV_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    IGNORE_EOS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    max_tokens: int
    kv: KvHandle
    first_token_id: int
    ignore_eos: bool
    seed: int
    def __init__(self, request_id: _Optional[str] = ..., token_ids: _Optional[_Iterable[int]] = ..., max_tokens: _Optional[int] = ..., kv: _Optional[_Union[KvHandle, _Mapping]] = ..., first_token_id: _Optional[int] = ..., ignore_eos: _Optional[bool] = ..., seed: _Optional[int] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("kv_received", "tokens", "done")
    KV_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    kv_received: KvReceived
    tokens: DecodeTokens
    done: DecodeDone
    def __init__(self, kv_received: _Optional[_Union[KvReceived, _Mapping]] = ..., tokens: _Optional[_Union[DecodeTokens, _Mapping]] = ..., done: _Optional[_Union[DecodeDone, _Mapping]] = ...) -> None: ...

class KvReceived(_message.Message):
    __slots__ = ("num_bytes", "transfer_ms", "num_blocks_skipped")
    NUM_BYTES_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_MS_FIELD_NUMBER: _ClassVar[int]
    NUM_BLOCKS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    num_bytes: int
    transfer_ms: float
    num_blocks_skipped: int
    def __init__(self, num_bytes: _Optional[int] = ..., transfer_ms: _Optional[float] = ..., num_blocks_skipped: _Optional[int] = ...) -> None: ...

class DecodeTokens(_message.Message):
    __slots__ = ("token_ids", "text", "num_cached_tokens")
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NUM_CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    text: str
    num_cached_tokens: int
    def __init__(self, token_ids: _Optional[_Iterable[int]] = ..., text: _Optional[str] = ..., num_cached_tokens: _Optional[int] = ...) -> None: ...

class DecodeDone(_message.Message):
    __slots__ = ("finish_reason", "num_generated_tokens", "num_cached_tokens")
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    NUM_GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    NUM_CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    finish_reason: str
    num_generated_tokens: int
    num_cached_tokens: int
    def __init__(self, finish_reason: _Optional[str] = ..., num_generated_tokens: _Optional[int] = ..., num_cached_tokens: _Optional[int] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("found",)
    FOUND_FIELD_NUMBER: _ClassVar[int]
    found: bool
    def __init__(self, found: _Optional[bool] = ...) -> None: ...

class StreamStatsRequest(_message.Message):
    __slots__ = ("interval_ms",)
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    interval_ms: int
    def __init__(self, interval_ms: _Optional[int] = ...) -> None: ...

class WorkerStats(_message.Message):
    __slots__ = ("worker_id", "num_waiting_requests", "num_running_requests", "kv_usage", "num_kv_blocks", "num_tokens_in_flight", "num_kv_holds", "timestamp_ms", "prefix_query_tokens_total", "prefix_hit_tokens_total")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_WAITING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NUM_RUNNING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    KV_USAGE_FIELD_NUMBER: _ClassVar[int]
    NUM_KV_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_KV_HOLDS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_QUERY_TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PREFIX_HIT_TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    num_waiting_requests: int
    num_running_requests: int
    kv_usage: float
    num_kv_blocks: int
    num_tokens_in_flight: int
    num_kv_holds: int
    timestamp_ms: float
    prefix_query_tokens_total: int
    prefix_hit_tokens_total: int
    def __init__(self, worker_id: _Optional[str] = ..., num_waiting_requests: _Optional[int] = ..., num_running_requests: _Optional[int] = ..., kv_usage: _Optional[float] = ..., num_kv_blocks: _Optional[int] = ..., num_tokens_in_flight: _Optional[int] = ..., num_kv_holds: _Optional[int] = ..., timestamp_ms: _Optional[float] = ..., prefix_query_tokens_total: _Optional[int] = ..., prefix_hit_tokens_total: _Optional[int] = ...) -> None: ...

class StreamKvEventsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KvEventBatch(_message.Message):
    __slots__ = ("worker_id", "events", "is_snapshot")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    IS_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    events: _containers.RepeatedCompositeFieldContainer[KvEvent]
    is_snapshot: bool
    def __init__(self, worker_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[KvEvent, _Mapping]]] = ..., is_snapshot: _Optional[bool] = ...) -> None: ...

class KvEvent(_message.Message):
    __slots__ = ("event_id", "stored", "removed", "cleared")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    stored: BlocksStored
    removed: BlocksRemoved
    cleared: AllBlocksCleared
    def __init__(self, event_id: _Optional[int] = ..., stored: _Optional[_Union[BlocksStored, _Mapping]] = ..., removed: _Optional[_Union[BlocksRemoved, _Mapping]] = ..., cleared: _Optional[_Union[AllBlocksCleared, _Mapping]] = ...) -> None: ...

class BlocksStored(_message.Message):
    __slots__ = ("block_hashes", "parent_hash", "medium")
    BLOCK_HASHES_FIELD_NUMBER: _ClassVar[int]
    PARENT_HASH_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    block_hashes: _containers.RepeatedScalarFieldContainer[int]
    parent_hash: int
    medium: KvMedium
    def __init__(self, block_hashes: _Optional[_Iterable[int]] = ..., parent_hash: _Optional[int] = ..., medium: _Optional[_Union[KvMedium, str]] = ...) -> None: ...

class BlocksRemoved(_message.Message):
    __slots__ = ("block_hashes", "medium")
    BLOCK_HASHES_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    block_hashes: _containers.RepeatedScalarFieldContainer[int]
    medium: KvMedium
    def __init__(self, block_hashes: _Optional[_Iterable[int]] = ..., medium: _Optional[_Union[KvMedium, str]] = ...) -> None: ...

class AllBlocksCleared(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SwitchRoleRequest(_message.Message):
    __slots__ = ("role", "drain_timeout_ms")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DRAIN_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    role: str
    drain_timeout_ms: int
    def __init__(self, role: _Optional[str] = ..., drain_timeout_ms: _Optional[int] = ...) -> None: ...

class SwitchRoleResponse(_message.Message):
    __slots__ = ("info", "drained_ms")
    INFO_FIELD_NUMBER: _ClassVar[int]
    DRAINED_MS_FIELD_NUMBER: _ClassVar[int]
    info: WorkerInfo
    drained_ms: float
    def __init__(self, info: _Optional[_Union[WorkerInfo, _Mapping]] = ..., drained_ms: _Optional[float] = ...) -> None: ...

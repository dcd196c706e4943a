from triskel.v1 import worker_pb2 as _worker_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_ERROR_CODE_UNSPECIFIED: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_INVALID_ARGUMENT: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_FAILED_PRECONDITION: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_UNAVAILABLE: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_DEADLINE_EXCEEDED: _ClassVar[FrameErrorCode]
FRAME_ERROR_CODE_UNSPECIFIED: FrameErrorCode
FRAME_ERROR_CODE_INVALID_ARGUMENT: FrameErrorCode
FRAME_ERROR_CODE_FAILED_PRECONDITION: FrameErrorCode
FRAME_ERROR_CODE_UNAVAILABLE: FrameErrorCode
FRAME_ERROR_CODE_DEADLINE_EXCEEDED: FrameErrorCode

class FrameCall(_message.Message):
    __slots__ = ("timeout_ms", "decode", "prefill", "cancel", "stats", "kv_events")
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_FIELD_NUMBER: _ClassVar[int]
    PREFILL_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    KV_EVENTS_FIELD_NUMBER: _ClassVar[int]
    timeout_ms: int
    decode: _worker_pb2.DecodeRequest
    prefill: _worker_pb2.PrefillRequest
    cancel: _worker_pb2.CancelRequest
    stats: _worker_pb2.StreamStatsRequest
    kv_events: _worker_pb2.StreamKvEventsRequest
    def __init__(self, timeout_ms: _Optional[int] = ..., decode: _Optional[_Union[_worker_pb2.DecodeRequest, _Mapping]] = ..., prefill: _Optional[_Union[_worker_pb2.PrefillRequest, _Mapping]] = ..., cancel: _Optional[_Union[_worker_pb2.CancelRequest, _Mapping]] = ..., stats: _Optional[_Union[_worker_pb2.StreamStatsRequest, _Mapping]] = ..., kv_events: _Optional[_Union[_worker_pb2.StreamKvEventsRequest, _Mapping]] = ...) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("code", "field", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: FrameErrorCode
    field: str
    message: str
    def __init__(self, code: _Optional[_Union[FrameErrorCode, str]] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

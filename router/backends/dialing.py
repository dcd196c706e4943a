"""How the router calls Triskel-protocol workers: TLS for both transports, frames or not.

A worker that advertises a frame port (`WorkerInfo.frame_port`) gets its Decode,
Prefill and Cancel calls and its load and KV event subscriptions as frames
(frame_channel.py), everything else over gRPC;
both go over TLS with the same client certificate when the router has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.tls import ClientTlsFiles, GrpcClientTls, ReloadingSslContext, TlsFlags
from triskel.router.backends.frame_channel import FrameTls


@dataclass(frozen=True, slots=True)
class WorkerDialing:
    grpc_tls: GrpcClientTls | None = None
    frame_tls: FrameTls | None = None
    # False: every call over gRPC, even to workers that serve frames.
    frames: bool = True

    def __post_init__(self) -> None:
        # Never frames in plaintext beside gRPC over TLS (or the reverse).
        if (self.grpc_tls is None) != (self.frame_tls is None):
            raise ValueError("grpc_tls and frame_tls come together (worker_dialing)")


def worker_dialing(
    files: ClientTlsFiles | None, flags: TlsFlags, *, frames: bool = True
) -> WorkerDialing:
    """Both transports' TLS from the one set of files; TlsFileError names a bad flag."""
    if files is None:
        return WorkerDialing(frames=frames)
    context = ReloadingSslContext(files.as_files(), flags, server=False)
    return WorkerDialing(
        GrpcClientTls(files, flags), FrameTls(context, files.server_name), frames=frames
    )

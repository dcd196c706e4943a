"""TLS for Triskel's listeners and clients, from PEM files that may be renewed in place.

files.py             TlsFiles (the config), reading and checking a pair
ssl_contexts.py      one SSLContext per aiohttp listener / asyncio socket, reloaded
watched.py           files watched for renewal: re-read when changed, bad ones logged once
grpc_credentials.py  gRPC server credentials (dynamic) and channel credentials
"""

from triskel.common.tls.files import (
    SERVER_FLAGS,
    ClientTlsFiles,
    TlsFileError,
    TlsFiles,
    TlsFlags,
)
from triskel.common.tls.grpc_credentials import GrpcClientTls, grpc_server_credentials
from triskel.common.tls.ssl_contexts import ReloadingSslContext

__all__ = [
    "SERVER_FLAGS",
    "ClientTlsFiles",
    "GrpcClientTls",
    "ReloadingSslContext",
    "TlsFileError",
    "TlsFiles",
    "TlsFlags",
    "grpc_server_credentials",
]

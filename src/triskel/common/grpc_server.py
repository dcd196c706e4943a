"""How every Triskel gRPC server starts: message limits, health checking, reflection."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

# Long prompts travel as token-id lists and images inline: allow messages well above
# gRPC's 4 MiB default on servers and clients alike.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MESSAGE_SIZE_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)


async def start_server(
    add_service: Callable[[grpc.aio.Server], None],
    service_name: str,
    address: str,
    credentials: grpc.ServerCredentials | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """Starts a server on `address` ("host:port", port 0 picks one); returns (server, port).

    `add_service` registers the servicer; `credentials` serve TLS (triskel.common.tls),
    None plaintext; `reuse_port` shares the port with other processes that set it too
    (a router's sibling processes). The standard health service reports SERVING for "" and
    `service_name`, and reflection lists every service, so grpcurl and Kubernetes gRPC
    probes work unchanged (the kubelet's probes speak plaintext only: not with TLS).
    OSError if it cannot bind.
    """
    # No SO_REUSEPORT unless asked (gRPC's default is on): a second server on a busy
    # port fails to start instead of silently sharing the port, and its clients.
    options = (*MESSAGE_SIZE_OPTIONS, ("grpc.so_reuseport", int(reuse_port)))
    server = grpc.aio.server(options=options)
    add_service(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (service_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        if credentials is None:
            port: int = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpcio raises where it once returned 0
        port = 0
    if port == 0:
        # Stopped now, not by the garbage collector, which prints a traceback once the
        # event loop has closed.
        await server.stop(None)
        raise OSError(f"cannot bind the {service_name} gRPC server to {address} (in use?)")
    await server.start()
    for service in ("", service_name):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port

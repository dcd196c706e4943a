# One image for every Triskel component: the entrypoint is the `triskel` command, the
# first argument picks the component (`operator`, `router`, `worker`), e.g.
#   docker run --rm ghcr.io/triskel-io/triskel:0.1.0 router --help
# The helm chart (charts/triskel) runs the operator and the router from it, and the
# operator runs mock worker pods from it.
FROM python:3.11-slim

# The Mooncake transfer engine's shared libraries (RDMA verbs, RDMA CM, NUMA).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libibverbs1 librdmacm1 libnuma1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package build reads (.dockerignore keeps everything else out).
WORKDIR /build
COPY pyproject.toml setup.py README.md ./
COPY src ./src
COPY operator ./operator
COPY router ./router
COPY simulator ./simulator
COPY workers ./workers
# No extras: the dev tools and torch (the `nccl` extra) stay out of the image. gcc
# builds the router's compiled modules (the prefix indexes' holder map, the scheduler's
# score sum), then leaves.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && (cd / && python -c "import triskel.router.scheduling.producers._holder_map, triskel.router.scheduling._score_sum") \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* /build

# A fixed non-root uid, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 triskel \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin triskel
USER 10001:10001
WORKDIR /tmp

# Router: OpenAI HTTP API and /metrics, gRPC API. Operator: kopf's liveness endpoint (8080).
EXPOSE 8080 50051
ENTRYPOINT ["triskel"]
CMD ["--help"]

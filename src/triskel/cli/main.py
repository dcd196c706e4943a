"""The `triskel` command: `up` runs Triskel on this machine; `operator`, `router`,
`worker` and `crds` run it in a cluster; `simulate` and `bench` replay traces;
`new-api-key` makes a key for the router's keys file."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from triskel.cli.help_format import FlagHelpCommand, FlagHelpGroup
from triskel.cli.replay_flags import JsonPath, RateScale, TpotMs, TraceLimit, TtftMs
from triskel.cli.supervisor import announce_ready
from triskel.cli.tls_flags import (
    OperatorWorkerTlsCertFile,
    RouterWorkerTlsCertFile,
    TlsKeyFile,
    WorkerTlsCaFile,
    WorkerTlsKeyFile,
    WorkerTlsServerName,
    tls_section,
    worker_tls_section,
)

if TYPE_CHECKING:
    from triskel.simulator.metrics import SloTargets

app = typer.Typer(cls=FlagHelpGroup, add_completion=False, no_args_is_help=True, help=__doc__)

LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error")]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=2)


def _json_config(text: str, option: str = "--config-json") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(f"{option}: not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise _fail(f"{option}: expected a JSON object")
    return data


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"triskel {installed_version('triskel')}")
        raise typer.Exit()


@app.callback()
def triskel_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    pass


@app.command(cls=FlagHelpCommand)
def up(
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="YAML deployment (default: built-in)")
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", help="router HTTP host:port (overrides the file)")
    ] = None,
    grpc: Annotated[
        str | None, typer.Option("--grpc", help="router gRPC host:port (overrides the file)")
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Start the router and every pool's workers as local processes."""
    from triskel.cli.router_ports import first_unusable
    from triskel.cli.up import run_up
    from triskel.cli.up_config import UpConfigError, load_up_config, with_router_addresses

    _setup_logging(log_level)
    try:
        config, source = load_up_config(file)
        config = with_router_addresses(config, http, grpc)
    except UpConfigError as error:
        raise _fail(str(error)) from None
    unusable = first_unusable(config.router, file)
    if unusable is not None:  # before any worker starts
        raise _fail(unusable)
    code = asyncio.run(run_up(config, source, typer.echo, log_level))
    raise typer.Exit(code)


@app.command(cls=FlagHelpCommand)
def worker(
    config_json: Annotated[
        str | None, typer.Option("--config-json", help="WorkerProcessConfig (triskel up)")
    ] = None,
    pool_json: Annotated[
        str | None, typer.Option("--pool-json", help="WorkerPoolSpec (a pod's args)")
    ] = None,
    worker_id: Annotated[str | None, typer.Option("--worker-id")] = None,
    grpc_address: Annotated[
        str | None, typer.Option("--grpc-address", help="host:port to serve on (port 0: any)")
    ] = None,
    kv_host: Annotated[
        str | None, typer.Option("--kv-host", help="address KV listeners bind and advertise")
    ] = None,
    kv_auth_key_file: Annotated[
        str | None,
        typer.Option(
            "--kv-auth-key-file",
            help="file with the KV auth key every worker of the graph shares (32+ bytes)",
        ),
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option("--tls-cert-file", help="serve gRPC over TLS with this certificate"),
    ] = None,
    tls_key_file: TlsKeyFile = None,
    tls_client_ca_file: Annotated[
        Path | None,
        typer.Option(
            "--tls-client-ca-file",
            help="require callers' and KV peers' certificates from this CA (mTLS)",
        ),
    ] = None,
    http_address: Annotated[
        str | None,
        typer.Option(
            "--http-address", help="host:port of the vLLM-compatible HTTP API (port 0: any)"
        ),
    ] = None,
    bootstrap_address: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-address",
            help="host:port of the SGLang-style P/D bootstrap listener (prefill / unified)",
        ),
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Run one worker (started by `triskel up` or a pod).

    Either `--config-json` or `--pool-json` with `--worker-id`; a flag overrides
    the same field of `--config-json`.
    """
    from triskel.workers.process import WorkerEndpoints, WorkerProcessConfig, run_worker

    _setup_logging(log_level)
    fields = _json_config(config_json, "--config-json") if config_json is not None else {}
    if pool_json is not None:
        fields["pool"] = _json_config(pool_json, "--pool-json")
    flags = {
        "worker_id": worker_id,
        "grpc_address": grpc_address,
        "kv_host": kv_host,
        "kv_auth_key_file": kv_auth_key_file,
        "http_address": http_address,
        "bootstrap_address": bootstrap_address,
    }
    for name, value in flags.items():
        if value is not None:
            # The field may be spelled either way in --config-json; the flag replaces both.
            fields.pop(WorkerProcessConfig.model_fields[name].alias or name, None)
            fields[name] = value
    try:
        tls = tls_section(fields.get("tls"), tls_cert_file, tls_key_file, tls_client_ca_file)
    except ValueError as error:
        raise _fail(f"worker: {error}") from None
    if tls is not None:
        fields["tls"] = tls
    try:
        config = WorkerProcessConfig.model_validate(fields)
    except ValidationError as error:
        raise _fail(f"worker config: {error}") from None

    def ready(endpoints: WorkerEndpoints) -> None:
        announce_ready(
            {
                "worker_id": config.worker_id,
                "grpc": endpoints.grpc,
                "http": endpoints.http,
                "bootstrap": endpoints.bootstrap,
            }
        )

    try:
        asyncio.run(run_worker(config, ready))
    except (ValueError, OSError) as error:  # OSError: an address it cannot listen on
        raise _fail(f"worker {config.worker_id}: {error}") from None


@app.command(cls=FlagHelpCommand)
def router(
    config_json: Annotated[
        str | None, typer.Option("--config-json", help="RouterProcessConfig")
    ] = None,
    cluster_config: Annotated[
        Path | None,
        typer.Option(
            "--cluster-config",
            help="the operator's router config file (in a cluster: the mounted ConfigMap)",
        ),
    ] = None,
    http_address: Annotated[
        str | None, typer.Option("--http-address", help="HTTP listen host:port")
    ] = None,
    grpc_address: Annotated[
        str | None, typer.Option("--grpc-address", help="gRPC listen host:port")
    ] = None,
    metrics_address: Annotated[
        str | None,
        typer.Option("--metrics-address", help="serve /metrics here only, not on --http-address"),
    ] = None,
    kube_api_url: Annotated[
        str | None,
        typer.Option("--kube-api-url", help="Kubernetes API outside a pod (kubectl proxy)"),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="share state with other replicas (redis://host:port)"),
    ] = None,
    redis_password_file: Annotated[
        Path | None,
        typer.Option("--redis-password-file", help="a file holding Redis' password"),
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option("--tls-cert-file", help="serve HTTPS and gRPC TLS with this certificate"),
    ] = None,
    tls_key_file: TlsKeyFile = None,
    tls_client_ca_file: Annotated[
        Path | None,
        typer.Option("--tls-client-ca-file", help="require client certificates from this CA"),
    ] = None,
    worker_tls_cert_file: RouterWorkerTlsCertFile = None,
    worker_tls_key_file: WorkerTlsKeyFile = None,
    worker_tls_ca_file: WorkerTlsCaFile = None,
    worker_tls_server_name: WorkerTlsServerName = None,
    api_keys_file: Annotated[
        Path | None,
        typer.Option("--api-keys-file", help="require API keys from this file (re-read)"),
    ] = None,
    jwt_issuer: Annotated[
        str | None, typer.Option("--jwt-issuer", help="accept bearer JWTs from this issuer")
    ] = None,
    jwt_audience: Annotated[
        str | None, typer.Option("--jwt-audience", help="the `aud` JWTs must carry")
    ] = None,
    jwt_jwks_url: Annotated[
        str | None, typer.Option("--jwt-jwks-url", help="the issuer's public keys (JWKS)")
    ] = None,
    jwt_public_key_file: Annotated[
        Path | None,
        typer.Option("--jwt-public-key-file", help="or one PEM public key for JWTs"),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=0,
            help="router processes serving the same ports (0: one per core it may use)",
        ),
    ] = 1,
    log_level: LogLevel = "warning",
) -> None:
    """Run the router in front of running workers, or of a cluster's pools."""
    from triskel.cli.router_processes import RouterProcesses, available_cores
    from triskel.cli.supervisor import ChildFailedError
    from triskel.router.process import (
        RouterEndpoints,
        RouterProcessConfig,
        RouterStartupError,
        run_router,
    )
    from triskel.router.siblings.config import MAX_PROCESSES

    _setup_logging(log_level)
    data = _json_config(config_json) if config_json is not None else {}
    overrides = {
        "clusterConfig": None if cluster_config is None else str(cluster_config),
        "httpAddress": http_address,
        "grpcAddress": grpc_address,
        "metricsAddress": metrics_address,
        "kubeApiUrl": kube_api_url,
        "redisUrl": redis_url,
        "redisPasswordFile": None if redis_password_file is None else str(redis_password_file),
    }
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        tls = tls_section(data.get("tls"), tls_cert_file, tls_key_file, tls_client_ca_file)
        worker_tls = worker_tls_section(
            data.get("workerTls"),
            worker_tls_cert_file,
            worker_tls_key_file,
            worker_tls_ca_file,
            worker_tls_server_name,
        )
    except ValueError as error:
        raise _fail(f"router: {error}") from None
    data.update({key: value for key, value in (("tls", tls), ("workerTls", worker_tls)) if value})
    auth = _auth_flags(
        data.get("auth"),
        api_keys_file,
        {
            "issuer": jwt_issuer,
            "audience": jwt_audience,
            "jwksUrl": jwt_jwks_url,
            "publicKeyFile": None if jwt_public_key_file is None else str(jwt_public_key_file),
        },
    )
    if auth is not None:
        data["auth"] = auth
    count = processes or available_cores()
    if count > MAX_PROCESSES:
        raise _fail(f"router: --processes: {count} is above the limit ({MAX_PROCESSES})")
    # Checked as each of `count` processes will run it (auth needs Redis among several).
    siblings = {"index": 0, "count": count, "directory": "."}
    checked = {**data, "siblings": siblings} if count > 1 else data
    try:
        config = RouterProcessConfig.model_validate(checked)
    except ValidationError as error:
        raise _fail(f"router: {error}") from None
    if count > 1:
        try:
            asyncio.run(RouterProcesses(data, count, log_level).run(announce_ready))
        except (ChildFailedError, OSError) as error:
            raise _fail(f"router: {error}") from None
        return

    def ready(endpoints: RouterEndpoints) -> None:
        ready = {"http": endpoints.http_address, "grpc": endpoints.grpc_address}
        if endpoints.metrics_address is not None:
            ready["metrics"] = endpoints.metrics_address
        announce_ready(ready)

    try:
        asyncio.run(run_router(config, ready))
    except (RouterStartupError, OSError) as error:
        raise _fail(f"router: {error}") from None


def _auth_flags(configured: Any, api_keys_file: Path | None, jwt: dict[str, str | None]) -> Any:
    """The `auth` section with the flags laid over `--config-json`'s (a flag wins)."""
    given = {key: value for key, value in jwt.items() if value is not None}
    if api_keys_file is None and not given:
        return configured
    auth = dict(configured) if isinstance(configured, dict) else {}
    if api_keys_file is not None:
        auth["apiKeysFile"] = str(api_keys_file)
    if given:
        current = auth.get("jwt")
        auth["jwt"] = (dict(current) if isinstance(current, dict) else {}) | given
    return auth


@app.command("new-api-key", cls=FlagHelpCommand)
def new_api_key(
    name: Annotated[str, typer.Option("--name", help="the key's name in logs and metrics")],
    tenant: Annotated[str, typer.Option("--tenant", help="the tenant it acts for")],
) -> None:
    """Print a new random API key and its entry for the router's keys file."""
    from triskel.router.auth.keys_file import ApiKeyEntry, hash_key, new_key

    key = new_key()
    try:
        entry = ApiKeyEntry(name=name, sha256=hash_key(key), tenant=tenant)
    except ValidationError as error:
        issue = error.errors()[0]
        raise _fail(f"--{issue['loc'][0]}: {issue['msg']}") from None
    typer.echo(f"API key (give it to the client; only its hash is kept):\n  {key}")
    typer.echo("Entry for the keys file (under `keys:`; add models, maxPriority, rateLimit):")
    typer.echo(f"  - name: {entry.name}\n    sha256: {entry.sha256}\n    tenant: {entry.tenant}")


@app.command(cls=FlagHelpCommand)
def crds(
    write: Annotated[
        Path | None, typer.Option("--write", help="write one <plural>.triskel.io.yaml per CRD")
    ] = None,
    check: Annotated[
        Path | None, typer.Option("--check", help="fail if this folder's CRDs are not current")
    ] = None,
) -> None:
    """Print the CustomResourceDefinitions generated from the API models."""
    from triskel.operator.crd_files import check_folder, render_all, write_folder

    if write is not None and check is not None:
        raise _fail("--write and --check: pick one")
    if check is not None:
        drift = check_folder(check)
        if not drift.is_current:
            raise _fail(f"{drift.describe(check)}\nregenerate with: triskel crds --write {check}")
        typer.echo(f"{check}: CRDs are current")
    elif write is not None:
        for path in write_folder(write):
            typer.echo(f"wrote {path}")
    else:
        typer.echo(render_all(), nl=False)


@app.command("operator", cls=FlagHelpCommand)
def operator_command(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", help="watch this namespace (repeat; default: all)"),
    ] = None,
    router_namespace: Annotated[
        str,
        typer.Option(
            "--router-namespace",
            envvar="POD_NAMESPACE",
            help="where the router runs and reads its ConfigMap",
        ),
    ] = "default",
    worker_image: Annotated[
        str, typer.Option("--worker-image", envvar="TRISKEL_WORKER_IMAGE", help="mock workers")
    ] = "ghcr.io/triskel-io/triskel:0.1.0",
    drain_timeout_s: Annotated[
        float, typer.Option("--drain-timeout-s", min=0, help="longest wait for in-flight work")
    ] = 120.0,
    liveness: Annotated[
        str | None, typer.Option("--liveness", help="e.g. http://0.0.0.0:8080/healthz")
    ] = None,
    status_interval_s: Annotated[
        float,
        typer.Option(
            "--status-interval-s", min=0.1, help="how often pool and graph status is refreshed"
        ),
    ] = 10.0,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            "--metrics-address",
            help="serve the autoscaler's desired replicas at /metrics here, e.g. 0.0.0.0:9090",
        ),
    ] = None,
    network_policy_router_labels: Annotated[
        str | None,
        typer.Option(
            "--network-policy-router-labels",
            help="k=v,...: the router pods; with the next, a NetworkPolicy per pool",
        ),
    ] = None,
    network_policy_operator_labels: Annotated[
        str | None,
        typer.Option(
            "--network-policy-operator-labels",
            help="k=v,...: this operator's pods (both in --router-namespace)",
        ),
    ] = None,
    worker_tls_secret: Annotated[
        str | None,
        typer.Option(
            "--worker-tls-secret", help="worker pods serve mTLS with this Secret (tls.crt, ...)"
        ),
    ] = None,
    worker_tls_cert_file: OperatorWorkerTlsCertFile = None,
    worker_tls_key_file: WorkerTlsKeyFile = None,
    worker_tls_ca_file: WorkerTlsCaFile = None,
    worker_tls_server_name: WorkerTlsServerName = None,
    log_level: LogLevel = "info",
) -> None:
    """Run the Kubernetes operator (WorkerPool, ServingGraph, RoutingPolicy)."""
    from triskel.common.tls import ClientTlsFiles, TlsFileError
    from triskel.operator.app import run_operator
    from triskel.operator.builders.network_policy import worker_callers
    from triskel.operator.runtime import OperatorOptions

    _setup_logging(log_level)
    try:
        callers = worker_callers(
            router_namespace, network_policy_router_labels, network_policy_operator_labels
        )
    except ValueError as error:
        raise _fail(f"operator: {error}") from None
    try:
        client_tls = worker_tls_section(
            None,
            worker_tls_cert_file,
            worker_tls_key_file,
            worker_tls_ca_file,
            worker_tls_server_name,
        )
    except ValueError as error:
        raise _fail(f"operator: {error}") from None
    options = OperatorOptions(
        worker_image=worker_image,
        namespaces=tuple(namespace or ()),
        router_namespace=router_namespace,
        drain_timeout_s=drain_timeout_s,
        status_interval_s=status_interval_s,
        liveness_endpoint=liveness,
        metrics_address=metrics_address,
        worker_callers=callers,
        worker_tls_secret=worker_tls_secret,
        worker_client_tls=None if client_tls is None else ClientTlsFiles.model_validate(client_tls),
    )
    try:
        asyncio.run(run_operator(options))
    except TlsFileError as error:
        raise _fail(f"operator: {error}") from None


@app.command(cls=FlagHelpCommand)
def simulate(
    ctx: typer.Context,
    trace: Annotated[
        str | None,
        typer.Option(
            "--trace", help="a .jsonl (Mooncake) or .csv (Azure) trace, or synthetic:FILE"
        ),
    ] = None,
    suite: Annotated[
        Path | None,
        typer.Option(
            "--suite",
            help="a benchmark suite (bench/suite.yaml): workloads x policies, one goodput table",
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="round-robin or a YAML routing file (repeat to compare)"),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option("--compare", help="several policies, comma-separated (as --policy)"),
    ] = None,
    limit: TraceLimit = None,
    rate_scale: RateScale = 1.0,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="policies simulated at once (processes)")
    ] = 1,
    unified: Annotated[int, typer.Option("--unified", min=0, help="unified instances")] = 0,
    prefill: Annotated[int, typer.Option("--prefill", min=0, help="prefill instances")] = 0,
    decode: Annotated[int, typer.Option("--decode", min=0, help="decode instances")] = 0,
    profile: Annotated[str, typer.Option("--profile", help="latency profile")] = (
        "llama-3.1-8b-h100"
    ),
    kv_capacity_tokens: Annotated[
        int | None,
        typer.Option("--kv-capacity-tokens", min=1, help="KV tokens per instance (what-if)"),
    ] = None,
    host_kv_tokens: Annotated[
        int,
        typer.Option(
            "--host-kv-tokens", min=0, help="host-memory KV tier per instance, tokens (0: none)"
        ),
    ] = 0,
    ttft_ms: TtftMs = 2000.0,
    tpot_ms: TpotMs = 100.0,
    attainment: Annotated[
        float, typer.Option("--attainment", min=0.01, max=1.0, help="goodput target")
    ] = 0.9,
    goodput: Annotated[
        bool, typer.Option("--goodput", help="search each policy's goodput (many runs)")
    ] = False,
    goodput_low: Annotated[
        float,
        typer.Option(
            "--goodput-low",
            min=0.0001,
            max=64,
            help="lowest rate probed (the search starts at --rate-scale)",
        ),
    ] = 0.125,
    seed: Annotated[int, typer.Option("--seed", help="random seed of every policy")] = 0,
    json_path: JsonPath = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="write PNG charts here")] = None,
    autoscale: Annotated[
        str | None,
        typer.Option(
            "--autoscale",
            help="scaling policies, comma-separated (triskel, hpa-queue, aibrix-kpa, dynamo, "
            "llm-d), each compared with a static pool sized for the peak",
        ),
    ] = None,
    burst: Annotated[
        list[str] | None,
        typer.Option(
            "--burst",
            help="START,END,FACTOR (seconds): FACTOR x the traffic there (repeat for several "
            "bursts, which must not overlap)",
        ),
    ] = None,
    min_replicas: Annotated[
        int, typer.Option("--min-replicas", min=1, help="autoscaling: per stage")
    ] = 1,
    max_replicas: Annotated[
        int, typer.Option("--max-replicas", min=1, help="autoscaling: per stage")
    ] = 32,
    search_static: Annotated[
        bool,
        typer.Option(
            "--search-static", help="autoscaling: also find the smallest static pool (many runs)"
        ),
    ] = False,
    ep: Annotated[
        int,
        typer.Option(
            "--ep",
            min=1,
            help="autoscaling an MoE profile: EP ranks per replica; compares whole-replica "
            "scaling with elastic EP steps",
        ),
    ] = 1,
    role_switch_s: Annotated[
        float | None,
        typer.Option(
            "--role-switch-s",
            min=0.0,
            help="autoscaling: Triskel's planner may move replicas between prefill and "
            "decode, a switch taking this long",
        ),
    ] = None,
) -> None:
    """Replay a trace on a simulated cluster: routing policies, or (--autoscale) scaling ones."""
    from triskel.simulator.cluster import ClusterShape
    from triskel.simulator.command import (
        SimulateError,
        SimulateOptions,
        load_policy,
        run_simulate,
    )
    from triskel.simulator.metrics import SloTargets
    from triskel.traces import TraceError, load_trace

    if suite is not None:
        _simulate_suite(
            ctx, suite, jobs=jobs, limit=limit, seed=seed, json_path=json_path, plot=plot
        )
        return
    if trace is None:
        raise _fail("--trace: required (or --suite FILE)")
    if autoscale is not None:
        if host_kv_tokens:
            raise _fail("--host-kv-tokens: not with --autoscale (its replicas have no host tier)")
        _simulate_autoscale(
            trace_path=trace,
            limit=limit,
            burst=burst,
            autoscale=autoscale,
            routing_specs=_policy_specs(policy, compare),
            unified=unified,
            prefill=prefill,
            decode=decode,
            profile=profile,
            kv_capacity_tokens=kv_capacity_tokens,
            slo=SloTargets(ttft_ms / 1000, tpot_ms / 1000, attainment),
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            seed=seed,
            jobs=jobs,
            json_path=json_path,
            plot=plot,
            search_static=search_static,
            ep=ep,
            rate_scale=rate_scale,
            role_switch_s=role_switch_s,
        )
        return
    if burst:
        raise _fail("--burst: only with --autoscale")
    if unified == 0 and prefill == 0 and decode == 0:
        prefill, decode = 8, 8  # the cluster docs/benchmarks.md uses
    try:
        shape = ClusterShape(
            num_unified=unified,
            num_prefill=prefill,
            num_decode=decode,
            profile=profile,
            kv_capacity_tokens=kv_capacity_tokens,
            host_kv_capacity_tokens=host_kv_tokens,
        )
        options = SimulateOptions(
            trace=load_trace(trace, limit),
            shape=shape,
            slo=SloTargets(ttft_ms / 1000, tpot_ms / 1000, attainment),
            policies=[load_policy(spec) for spec in _policy_specs(policy, compare)],
            rate_scale=rate_scale,
            jobs=jobs,
            seed=seed,
            search_goodput=goodput,
            goodput_low=goodput_low,
            json_path=json_path,
            plot_dir=plot,
        )
    except (TraceError, SimulateError) as error:
        raise _fail(str(error)) from None
    except ValidationError as error:
        raise _fail(f"cluster: {error.errors()[0]['msg']}") from None
    run_simulate(options, typer.echo)


_SUITE_FLAGS = frozenset({"suite", "jobs", "limit", "seed", "json_path", "plot"})


def _simulate_suite(
    ctx: typer.Context,
    path: Path,
    *,
    jobs: int,
    limit: int | None,
    seed: int,
    json_path: Path | None,
    plot: Path | None,
) -> None:
    from triskel.simulator.suite import SuiteOptions, run_suite
    from triskel.simulator.suite_config import SuiteError, load_suite
    from triskel.traces import TraceError

    def given(name: str) -> bool:
        # By name: typer carries its own copy of click's ParameterSource.
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    others = [
        p.opts[0] for p in ctx.command.params if p.name not in _SUITE_FLAGS and given(p.name or "")
    ]
    if others:
        # The file sets them per workload: a flag would be silently overridden.
        raise _fail(
            f"--suite: the file sets traces, policies, clusters and SLOs; drop {', '.join(others)}"
        )
    try:
        options = SuiteOptions(
            load_suite(path),
            jobs=jobs,
            limit=limit,
            seed=seed if given("seed") else None,
            json_path=json_path,
            plot_dir=plot,
        )
        run_suite(options, typer.echo)
    except (SuiteError, TraceError) as error:
        raise _fail(str(error)) from None


def _simulate_autoscale(
    *,
    trace_path: str,
    limit: int | None,
    burst: list[str] | None,
    autoscale: str,
    routing_specs: list[str],
    unified: int,
    prefill: int,
    decode: int,
    profile: str,
    kv_capacity_tokens: int | None,
    slo: SloTargets,
    min_replicas: int,
    max_replicas: int,
    seed: int,
    jobs: int,
    json_path: Path | None,
    plot: Path | None,
    search_static: bool,
    ep: int,
    rate_scale: float,
    role_switch_s: float | None,
) -> None:
    from triskel.simulator.autoscale_command import AutoscaleOptions, run_autoscale
    from triskel.simulator.cluster import ClusterShape
    from triskel.simulator.command import SimulateError, load_policy
    from triskel.traces import TraceError, load_trace
    from triskel.traces.burst import with_bursts

    if len(routing_specs) != 1:
        raise _fail(
            "--autoscale: give one routing --policy (the policies compared are scaling ones)"
        )
    given = unified > 0 or prefill > 0 or decode > 0
    try:
        loaded = load_trace(trace_path, limit).scaled(rate_scale)
        windows = [_burst_window(text) for text in burst or ()]
        if windows:  # in the replayed (rate-scaled) time
            try:
                loaded = with_bursts(loaded, windows, seed=seed)
            except ValueError as error:  # "burst: …", said of the flag
                raise ValueError(f"--{error}") from None
        counts = (
            {"num_unified": unified, "num_prefill": prefill, "num_decode": decode}
            if given
            else {"num_prefill": 1, "num_decode": 1}
        )
        shape = ClusterShape(profile=profile, kv_capacity_tokens=kv_capacity_tokens, **counts)
        options = AutoscaleOptions(
            trace=loaded,
            shape=shape,
            slo=slo,
            policies=[name.strip() for name in autoscale.split(",") if name.strip()],
            routing=load_policy(routing_specs[0]).routing,
            start=shape if given else None,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            seed=seed,
            jobs=jobs,
            json_path=json_path,
            plot_dir=plot,
            search_static=search_static,
            ep=ep,
            burst_windows=tuple(sorted((start_s, end_s) for start_s, end_s, _ in windows)),
            role_switch_s=role_switch_s,
        )
        run_autoscale(options, typer.echo)
    except (TraceError, SimulateError) as error:
        raise _fail(str(error)) from None
    except ValidationError as error:
        raise _fail(f"cluster: {error.errors()[0]['msg']}") from None
    except ValueError as error:  # a policy that cannot run this graph, a bad burst
        raise _fail(str(error)) from None


def _burst_window(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        start, end, factor = (float(part) for part in parts)
    except ValueError:
        raise ValueError(f"--burst: expected START,END,FACTOR, got {text!r}") from None
    if not all(math.isfinite(value) for value in (start, end, factor)):
        raise ValueError(f"--burst: START, END and FACTOR must be finite numbers, got {text!r}")
    return start, end, factor


def _policy_specs(policies: list[str] | None, compare: str | None) -> list[str]:
    """`--policy` values, then `--compare` ones; round-robin when neither is given."""
    specs = list(policies or [])
    if compare:
        specs += [spec.strip() for spec in compare.split(",") if spec.strip()]
    return specs or ["round-robin"]


@app.command(cls=FlagHelpCommand)
def bench(
    trace: Annotated[
        str,
        typer.Option(
            "--trace", help="a .jsonl (Mooncake) or .csv (Azure) trace, or synthetic:FILE"
        ),
    ],
    url: Annotated[
        str,
        typer.Option("--url", help="the router: http://HOST:PORT or grpc://HOST:PORT"),
    ] = "http://127.0.0.1:8080",
    model: Annotated[
        str | None, typer.Option("--model", help="default: the router's only model")
    ] = None,
    limit: TraceLimit = None,
    rate_scale: RateScale = 1.0,
    ttft_ms: TtftMs = 2000.0,
    tpot_ms: TpotMs = 100.0,
    attainment: Annotated[
        float, typer.Option("--attainment", min=0.01, max=1.0, help="SLO attainment target")
    ] = 0.9,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="seconds a request may take")
    ] = 300.0,
    salt: Annotated[
        str, typer.Option("--salt", help="new prompts, same sharing (to rerun on warm caches)")
    ] = "",
    json_path: JsonPath = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="a progress bar on stderr")
    ] = True,
) -> None:
    """Replay a trace against a running router (`triskel up`), open loop, and measure it."""
    from triskel.simulator.bench.command import BenchOptions, run_bench
    from triskel.simulator.bench.target import TargetError
    from triskel.simulator.metrics import SloTargets
    from triskel.traces import TraceError, load_trace

    try:
        loaded = load_trace(trace, limit)
    except TraceError as error:  # a bad or unreadable file, named with line and field
        raise _fail(str(error)) from None
    options = BenchOptions(
        url=url,
        trace=loaded,
        slo=SloTargets(ttft_ms / 1000, tpot_ms / 1000, attainment),
        rate_scale=rate_scale,
        model=model,
        timeout_s=timeout,
        salt=salt,
        json_path=json_path,
        show_progress=progress,
    )
    try:
        metrics = asyncio.run(run_bench(options, typer.echo))
    except TargetError as error:
        raise _fail(str(error)) from None
    if metrics.num_finished == 0:
        raise _fail("bench: no request finished (see the failures above)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

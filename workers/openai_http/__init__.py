"""The mock worker's vLLM-compatible HTTP API, with vLLM- and SGLang-style P/D.

Built on the `Engine` protocol (`triskel.workers.api`) and served beside the gRPC API
by the same process (`triskel.workers.process`). Start it with `start_worker_http_api`.
"""

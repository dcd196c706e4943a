"""Which router a `--url` names: HTTP (with or without /v1) or gRPC; anything else refused."""

from __future__ import annotations

import pytest

from triskel.simulator.bench.target import TargetError, Wire, parse_target_url


@pytest.mark.parametrize(
    ("url", "wire", "address"),
    [
        ("http://127.0.0.1:8080", Wire.HTTP, "http://127.0.0.1:8080"),
        # What `triskel up` prints: the OpenAI base URL.
        ("http://127.0.0.1:8080/v1", Wire.HTTP, "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/v1/", Wire.HTTP, "http://127.0.0.1:8080"),
        ("https://router.example:443", Wire.HTTP, "https://router.example:443"),
        ("grpc://127.0.0.1:50051", Wire.GRPC, "127.0.0.1:50051"),
    ],
)
def test_good_urls(url: str, wire: Wire, address: str) -> None:
    parsed = parse_target_url(url)
    assert (parsed.wire, parsed.address, parsed.url) == (wire, address, url)


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:8080",  # no scheme
        "ftp://127.0.0.1:21",
        "http://127.0.0.1",  # no port
        "http://127.0.0.1:99999",
        "http://127.0.0.1:8080/v2",
        "grpc://127.0.0.1:50051/triskel",
    ],
)
def test_bad_urls_are_refused_naming_the_option(url: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target_url(url)
    assert str(caught.value).startswith(f"--url {url}: ")

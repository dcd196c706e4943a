"""`split_address`: the host and port of a "host:port" address, and the rule `Address`
validates with."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from triskel.common.api import Address, split_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (
            "router.triskel.svc.cluster.local:8080",
            ("router.triskel.svc.cluster.local", 8080),
        ),
        ("localhost:0", ("localhost", 0)),  # port 0: the listener picks a free one
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),  # the highest port there is
        # Brackets stay on the host, so f"{host}:{port}" is a valid address again.
        ("[::1]:8000", ("[::1]", 8000)),
        ("[::]:0", ("[::]", 0)),
        ("[fe80::1%eth0]:9000", ("[fe80::1%eth0]", 9000)),
        # Without brackets the last colon decides, as the callers always split.
        ("::1:8000", ("::1", 8000)),
    ],
)
def test_the_port_is_what_follows_the_last_colon(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected
    host, port = expected
    assert f"{host}:{port}" == address  # it joins back to what it split


@pytest.mark.parametrize(
    "address",
    [
        "localhost",  # no port
        "[::1]",  # no port: "1]" follows the last colon
        "127.0.0.1:",  # an empty port
        ":8080",  # no host
        "localhost:http",  # a service name, not a number
        "localhost:-1",
        "localhost:65536",  # above the highest port
        "localhost:８０",  # full-width digits, which int() would still read
        "localhost:²",  # isdigit() says yes, int() says no
        "",
    ],
)
def test_what_is_not_host_port_is_refused_by_name(address: str) -> None:
    with pytest.raises(ValueError, match="expected host:port") as raised:
        split_address(address)
    assert repr(address) in str(raised.value)
    # `Address` refuses the same strings, so a validated config never reaches the error.
    with pytest.raises(ValidationError):
        TypeAdapter(Address).validate_python(address)

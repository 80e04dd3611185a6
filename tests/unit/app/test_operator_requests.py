"""Operator request files (app/operator_requests.py): what serve takes, and the refusals it
answers with `field: reason` (nothing done)."""

from __future__ import annotations

import pytest

from indexmaker.app.operator_requests import BadRequest, parse_request


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"command": "list"}', ("list", None)),
        (b'{"command": "resume"}', ("resume", None)),
        (b'{"command": "resume", "lot": null}', ("resume", None)),
        (b'{"command": "resume", "lot": "EVM:ARBITRUM:USDC#1"}', ("resume", "EVM:ARBITRUM:USDC#1")),
        (
            b'{"command": "resume", "lot": "EVM:ARBITRUM:USDC#1+EVM:ARBITRUM:USDC#2"}',
            ("resume", "EVM:ARBITRUM:USDC#1+EVM:ARBITRUM:USDC#2"),
        ),
        (
            b'{"command": "resume", "lot": "EVM:BASE:USDC#3+38 more+EVM:BASE:USDC#44"}',
            ("resume", "EVM:BASE:USDC#3+38 more+EVM:BASE:USDC#44"),
        ),
    ],
)
def test_requests_serve_takes(data: bytes, expected: tuple[str, str | None]) -> None:
    assert parse_request(data) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "request: not a JSON object"),
        (b"\xff\xfe", "request: not a JSON object"),
        (b"[1]", "request: not a JSON object"),
        (b'{"command": "drop"}', "command: 'drop' is not list or resume"),
        (b'{"lot": "A#1"}', "command: None is not list or resume"),
        (b'{"command": "list", "lot": "A#1"}', "lot: only with resume"),
        (b'{"command": "resume", "lot": 7}', "lot: 7 is not ORIGIN#SEQ"),
        (b'{"command": "resume", "lot": "A#1; rm"}', "lot: 'A#1; rm' is not ORIGIN#SEQ"),
        (b'{"command": "resume", "lot": "A#1+"}', "lot: 'A#1+' is not ORIGIN#SEQ"),
        (b'{"command": "list"}' + b" " * 5000, "request: longer than 4096 bytes"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(data: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as error:
        parse_request(data)
    assert str(error.value).startswith(message)

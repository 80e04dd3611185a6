"""Operator request files (app/operator_requests.py): what serve takes, and the refusals it
answers with `field: reason` (nothing done)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexmaker.app.operator_requests import (
    MAX_REQUEST_BYTES,
    REQUEST,
    BadRequest,
    NotARequest,
    parse_request,
    read_request_file,
)


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


def test_only_a_regular_file_is_read_as_a_request(tmp_path: Path) -> None:
    """A FIFO in the operator directory is refused at once instead of blocking the reader (the
    event loop, and with it the service's stop); so is a directory; a regular file is read, at
    most one byte past the limit."""
    fifo = tmp_path / ("a" * 32 + REQUEST)
    os.mkfifo(fifo)
    with pytest.raises(NotARequest, match="not a regular file"):
        read_request_file(fifo)  # blocked forever with a plain open()/read_bytes()
    folder = tmp_path / ("b" * 32 + REQUEST)
    folder.mkdir()
    with pytest.raises(NotARequest):
        read_request_file(folder)
    big = tmp_path / ("c" * 32 + REQUEST)
    big.write_bytes(b"x" * (MAX_REQUEST_BYTES * 4))
    assert len(read_request_file(big)) == MAX_REQUEST_BYTES + 1
    link = tmp_path / ("d" * 32 + REQUEST)
    link.symlink_to(big)
    with pytest.raises(OSError):
        read_request_file(link)  # O_NOFOLLOW

"""`serve`'s logs over real loopback sockets: each line names the session, client, order,
batch, instrument, transfer or payment it is about, and the server's signing key never
appears, in any field (issue 6, observability)."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from indexmaker.app.config import SERVER_KEY_ENV
from indexmaker.app.service import Service
from indexmaker.observability.logging import log_event, setup_logging
from indexmaker.server import client as sdk

from .conftest import TEST_KEYS, sdk_fast_config

SERVER_KEY = "0x" + secrets.token_hex(32)  # below the curve order but with ~2^-128 odds


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """serve's own log set-up (JSON lines), written to a buffer instead of stderr."""
    setup_logging("DEBUG", json=True)
    buffer = io.StringIO()
    (handler,) = logging.getLogger("indexmaker").handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root = logging.getLogger("indexmaker")
        root.handlers.clear()
        root.setLevel(logging.NOTSET)
        root.propagate = True


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_logs_carry_their_context_and_never_the_server_key(
    json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_KEY_ENV, SERVER_KEY)
    service = Service(sdk_fast_config())
    await service.start()
    try:
        async with sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as c:
            await sdk.sim_deposit(c.url, c.address, Decimal(500))
            await c.new_order("SY100", "buy", Decimal(500), "ctx-1")
            await c.wait_minted("ctx-1", timeout=8)
            address = c.address.lower()
        # An error that quotes the key (a request echoed back, say) is masked as well.
        log_event("probe", logging.ERROR, error=RuntimeError(f"signing with {SERVER_KEY} failed"))
    finally:
        await service.stop()
    text = json_logs.getvalue()
    lines = records(text)
    assert lines, text
    body = SERVER_KEY[2:]
    assert body not in text.lower() and body.upper() not in text
    assert any("***" in str(r.get("error")) for r in lines if r["event"] == "probe")

    def one(event: str) -> dict[str, Any]:
        found = [r for r in lines if r["event"] == event]
        assert found, f"no {event} in {sorted({r['event'] for r in lines})}"
        return found[0]

    # The FIX session's own events: its id, its peer, and the client it spoke for.
    ended = one("session_ended")
    assert ended["session"].startswith("s") and ended["source"] == "127.0.0.1"
    assert ended["client"].lower() == address and ended["chain_id"] == 42161
    # The runtime's commands: an exchange order names its order, batch and instrument; the
    # mint its client and payment; neither leaks the session's context.
    order = one("exchange_order")
    assert order["order"] and order["batch"] and order["instrument"].endswith("USDC")
    assert "session" not in order
    mint = one("mint")
    assert mint["client"].lower() == address and mint["payment"] and mint["symbol"] == "SY100"

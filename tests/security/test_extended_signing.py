"""The extended signed text (SPEC §5 Replay, signing.py) attacked over real sockets.

A request carrying a `nonce` is signed over the canonical JSON of the whole frame without its
trailer (keys sorted, no whitespace): built here with the standard library's `json` and signed
with eth-account, so a third-party client can do the same. Any field changed after signing
fails; the nonce makes each signature one of a kind, so the same order can be cancelled twice.
On a `?signing=full` session every server frame is signed over its whole content, and the SDK
refuses one altered in transit (a proxy here flips a digit of a quote).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from indexmaker.core.ids import ClientOrderId
from indexmaker.server import client as sdk
from integration.test_protocol import (
    ORDER,
    RECV_TIMEOUT,
    Live,
    Wire,
    fast_config,
    public_key_of,
    start_live,
)


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    live = await start_live(fast_config())
    try:
        yield live
    finally:
        await live.http.close()
        await live.stop()


def canonical(frame: dict[str, Any]) -> str:
    body = {k: v for k, v in frame.items() if k != "standard_trailer"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def extended(wire: Wire, msg_type: str, body: dict[str, Any], **build: Any) -> dict[str, Any]:
    """A request signed over the extended text, with a fresh client nonce."""
    frame = wire.build(msg_type, {**body, "nonce": uuid.uuid4().hex}, sign=False, **build)
    signed = Account.sign_message(encode_defunct(text=canonical(frame)), wire.account.key)
    frame["standard_trailer"] = {
        "public_key": [public_key_of(wire.account)],
        "signature": ["0x" + bytes(signed.signature).hex()],
    }
    return frame


async def accepted(wire: Wire, frame: dict[str, Any]) -> None:
    await wire.send(frame)
    await wire.expect("ACK", ref_seq_num=wire.seq + 1)
    wire.seq += 1


async def test_a_field_changed_after_signing_is_refused(live: Live) -> None:
    wire = await live.connect()
    order = extended(wire, "NewIndexOrder", {"client_order_id": "x-1", **ORDER})
    for field, value in (("amount", "5000"), ("side", "sell"), ("symbol", "SYAI")):
        altered = json.loads(json.dumps(order))
        altered[field] = value
        await wire.refused(altered, "Not authorised", ref=0, refused_seq=1)
    assert live.service.engine.orders.update(wire.key, ClientOrderId("x-1")) is None
    await accepted(wire, order)
    assert (await wire.expect("NewIndexOrder", client_order_id="x-1"))["status"] == "new"
    # The header is covered too: the same frame under another seq_num does not verify.
    again = json.loads(json.dumps(order))
    again["standard_header"]["seq_num"] = 2
    await wire.refused(again, "Not authorised", ref=1, refused_seq=2)


async def test_two_cancels_of_one_order_with_two_nonces_and_no_inflated_copy(
    live: Live,
) -> None:
    wire = await live.connect()  # no deposit: everything stays cancellable
    await accepted(wire, extended(wire, "NewIndexOrder", {"client_order_id": "c-1", **ORDER}))
    await wire.expect("NewIndexOrder", client_order_id="c-1")
    cancel = {"client_order_id": "c-1", "symbol": "SY100", "amount": "100"}
    first = extended(wire, "CancelIndexOrder", cancel)
    await accepted(wire, first)
    assert (await wire.expect("CancelIndexOrder", client_order_id="c-1"))["status"] == "canceled"
    await accepted(wire, extended(wire, "CancelIndexOrder", cancel))  # a second nonce
    assert (await wire.expect("CancelIndexOrder", client_order_id="c-1"))["status"] == "canceled"
    inflated = json.loads(json.dumps(first))
    inflated["standard_header"]["seq_num"] = wire.seq + 1
    inflated["amount"] = "800"
    await wire.refused(inflated, "Not authorised")
    replay = json.loads(json.dumps(first))  # the first cancel, byte for byte
    await wire.refused(replay, "Invalid sequence number")
    update = live.service.engine.orders.update(wire.key, ClientOrderId("c-1"))
    assert update is not None and update.amount == 800


async def test_a_server_can_require_the_extended_text() -> None:
    live = await start_live(fast_config(require_extended_signatures=True))
    try:
        wire = await live.connect()
        reference = wire.build("NewIndexOrder", {"client_order_id": "r-1", **ORDER})
        reason = await wire.refused(reference, "Not authorised")
        assert "requires the extended signed text" in reason
        await accepted(wire, extended(wire, "NewIndexOrder", {"client_order_id": "r-1", **ORDER}))
        assert (await wire.expect("NewIndexOrder", client_order_id="r-1"))["status"] == "new"
    finally:
        await live.http.close()
        await live.stop()


async def test_full_signing_session_frames_verify_over_their_whole_content(live: Live) -> None:
    ws = await live.http.ws_connect(live.url + "?signing=full", timeout=aiohttp.ClientWSTimeout(5))
    account = Account.create()
    try:
        wire = Wire(ws, account, live)
        frame = wire.build(
            "NewQuoteRequest",
            {"client_quote_id": "f-q", "symbol": "SY100", "side": "buy", "amount": "100"},
        )
        await ws.send_str(json.dumps(frame))
        kinds = set()
        for _ in range(3):  # ACK, NewIndexQuote, IndexQuoteResponse
            message = await ws.receive(timeout=RECV_TIMEOUT)
            received = json.loads(message.data)
            kinds.add(received["standard_header"]["msg_type"])
            assert live.server_address.lower() in signed_by(received), received
        assert kinds == {"ACK", "NewIndexQuote", "IndexQuoteResponse"}
    finally:
        await ws.close()


def signed_by(frame: dict[str, Any]) -> set[str]:
    """Addresses that signed the frame's canonical text (r‖s: both recovery ids)."""
    raw = bytes.fromhex(frame["standard_trailer"]["signature"][0][2:])
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
    message = encode_defunct(text=canonical(frame))
    return {Account.recover_message(message, vrs=(v, r, s)).lower() for v in (27, 28)}


class AlteringProxy:
    """A loopback TCP relay that changes one digit of every `quantity_possible` the server
    sends (same length, so the WebSocket framing stays valid): an attacker in the path."""

    MARK = b'"quantity_possible":"'

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.altered = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, alter=False)),
            asyncio.create_task(self._pump(up_reader, writer, alter=True)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, alter: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if alter and self.MARK in data:
                    at = data.index(self.MARK) + len(self.MARK)
                    digit = b"7" if data[at : at + 1] != b"7" else b"8"
                    data = data[:at] + digit + data[at + 1 :]
                    self.altered += 1
                writer.write(data)
                await writer.drain()


async def test_a_server_frame_altered_in_transit_fails_verification(live: Live) -> None:
    proxy = AlteringProxy(live.service.server.bound_port)
    await proxy.start()
    url = f"ws://127.0.0.1:{proxy.port}/ws"
    address = live.server_address
    try:
        # Reference-style signatures cover {msg_type, id} only: the altered figure passes.
        async with sdk.IndexMakerClient(
            url, Account.create().key, server_address=address, extended=False, reconnect=False
        ) as fooled:
            quote = await fooled.quote("SY100", "buy", Decimal(100))
            assert proxy.altered == 1 and not fooled.unverified
            assert quote.quantity_possible > 0
        # The SDK's default, full-content signatures: the altered frame is refused.
        async with sdk.IndexMakerClient(
            url, Account.create().key, server_address=address, reconnect=False
        ) as guarded:
            with pytest.raises(sdk.ServerSignatureError, match="does not verify"):
                await guarded.quote("SY100", "buy", Decimal(100))
            assert proxy.altered == 2
            assert any("quantity_possible" in u.raw for u in guarded.unverified)
    finally:
        await proxy.stop()

"""The reference system's own clients, replayed frame for frame (issue 8, SPEC §5).

Two clients were run unchanged against our server; here their exact frame shapes are sent
over a real socket: field order as they write it (`msg_type` last in the header, the id after
the amount), numbers where they send numbers (`chain_id`, `seq_num`) and strings for amounts,
no trailer at all on the test client's quotes, empty trailer lists on the front end's quotes,
an extra `side` on cancels. Both continue at `ref_seq_num + 1` after every ACK and NAK, so
that is what this client does too: a NAK must not leave it out of step.

- The front end's quotes socket asks for several (chain id, address) pairs on one socket:
  chain 1 with the user's address, chain 8453 with each index token's address.
- The test client signs sha256({"msg_type","id"}) (the server's `accept_legacy_sha256`) and
  generates a fresh hash-based id per message. (Its nonce reuse is tested in tests/security.)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from coincurve import PrivateKey
from eth_account import Account

from integration.test_protocol import RECV_TIMEOUT, Live, fast_config, start_live

TOKENS = ("0x" + "1a" * 20, "0x" + "2b" * 20)  # index tokens on Base, for the price ticker


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    live = await start_live(fast_config(accept_legacy_sha256=True))
    try:
        yield live
    finally:
        await live.http.close()
        await live.stop()


def iso_now() -> str:
    """`new Date().toISOString()`: milliseconds and a Z."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReferenceClient:
    """Reads every frame; keeps `seq` as the reference clients do: ref_seq_num + 1."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seq = 1
        self.frames: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def until(self, msg_type: str, **fields: Any) -> dict[str, Any]:
        for frame in self.frames:
            if _is(frame, msg_type, fields):
                self.frames.remove(frame)
                return frame
        async with asyncio.timeout(10):
            while True:
                message = await self.ws.receive(timeout=RECV_TIMEOUT)
                assert message.type is aiohttp.WSMsgType.TEXT, message
                frame = json.loads(message.data)
                if frame["standard_header"]["msg_type"] in ("ACK", "NAK"):
                    self.seq = frame["ref_seq_num"] + 1  # exactly what both clients do
                if _is(frame, msg_type, fields):
                    return frame
                self.frames.append(frame)


def _is(frame: dict[str, Any], msg_type: str, fields: dict[str, Any]) -> bool:
    header = frame["standard_header"]
    return header["msg_type"] == msg_type and all(frame.get(k) == v for k, v in fields.items())


def front_end_quote(seq: int, chain_id: int, address: str, quote_id: str) -> str:
    return json.dumps(
        {
            "standard_header": {
                "msg_type": "NewQuoteRequest",
                "sender_comp_id": "CLIENT",
                "target_comp_id": "SERVER",
                "seq_num": seq,
                "timestamp": iso_now(),
            },
            "chain_id": chain_id,
            "address": address,
            "client_quote_id": quote_id,
            "symbol": "SY100",
            "side": "buy",
            "amount": "1000",
            "standard_trailer": {"public_key": [], "signature": []},
        }
    )


def signed_by_test_client(
    key: PrivateKey, msg_type: str, seq: int, address: str, body: dict[str, Any]
) -> str:
    """The test client's shape: header with msg_type last, base fields, then the id; signed
    over sha256 of {"msg_type","id"} (RFC 6979 here: a distinct r per message)."""
    frame: dict[str, Any] = {
        "standard_header": {
            "sender_comp_id": "CLIENT",
            "target_comp_id": "SERVER",
            "seq_num": seq,
            "timestamp": iso_now(),
            "msg_type": msg_type,
        },
        "chain_id": 42161,
        "address": address,
        **body,
    }
    if msg_type.endswith("QuoteRequest"):
        return json.dumps(frame)  # the test client deletes the trailer of a quote
    signed_id = body.get("client_order_id") or body.get("client_quote_id")
    text = json.dumps({"msg_type": msg_type, "id": signed_id}, separators=(",", ":"))
    signature = key.sign_recoverable(hashlib.sha256(text.encode()).digest(), hasher=None)[:64]
    frame["standard_trailer"] = {
        "public_key": ["0x" + key.public_key.format(compressed=False).hex()],
        "signature": ["0x" + signature.hex()],
    }
    return json.dumps(frame, indent=2)  # it sends what its text area shows


async def test_front_end_quotes_several_pairs_and_keeps_step_after_a_nak(live: Live) -> None:
    user = Account.create().address
    ws = await live.http.ws_connect(live.url, timeout=aiohttp.ClientWSTimeout(5))
    client = ReferenceClient(ws)
    try:
        pairs = [(1, user), *((8453, token) for token in TOKENS)]
        for n, (chain_id, address) in enumerate(pairs):
            await client.send(front_end_quote(client.seq, chain_id, address, f"fq-{n}"))
            await client.until("ACK")
            answer = await client.until("IndexQuoteResponse", client_quote_id=f"fq-{n}")
            assert (answer["chain_id"], answer["address"]) == (chain_id, address.lower())
            assert Decimal(answer["quantity_possible"]) > 0
        # A refused quote (a gap: seq 3 ahead): the NAK names the last accepted seq...
        await client.send(front_end_quote(client.seq + 2, 1, user, "fq-gap"))
        nak = await client.until("NAK")
        assert nak["ref_seq_num"] == 3 and nak["refused_seq_num"] == 6
        # ...so the front end's next frame (ref + 1) is the right one and is accepted.
        assert client.seq == 4
        await client.send(front_end_quote(client.seq, 1, user, "fq-after"))
        assert (await client.until("ACK"))["ref_seq_num"] == 4
        await client.until("IndexQuoteResponse", client_quote_id="fq-after")
    finally:
        await ws.close()


async def test_test_client_order_fills_invoice_and_cancel(live: Live) -> None:
    key = PrivateKey()
    address = Account.from_key(key.secret).address
    ws = await live.http.ws_connect(live.url, timeout=aiohttp.ClientWSTimeout(5))
    client = ReferenceClient(ws)
    try:
        quote = {"symbol": "SY100", "side": "buy", "amount": "5", "client_quote_id": "TQ-1"}
        await client.send(signed_by_test_client(key, "NewQuoteRequest", client.seq, address, quote))
        await client.until("ACK")
        await client.until("IndexQuoteResponse", client_quote_id="TQ-1")
        # An order with a bad amount: NAK, and the client carries on in step.
        bad = {"symbol": "SY100", "side": "buy", "amount": "5.1234567", "client_order_id": "X"}
        await client.send(signed_by_test_client(key, "NewIndexOrder", client.seq, address, bad))
        nak = await client.until("NAK")
        assert nak["ref_seq_num"] == 1 and "amount" in nak["reason"] and client.seq == 2
        await live.deposit(address, "1000")
        order = {
            "symbol": "SY100",
            "side": "buy",
            "amount": "400",
            "client_order_id": "ABC-DEF-GHI-1234",
        }
        await client.send(signed_by_test_client(key, "NewIndexOrder", client.seq, address, order))
        assert (await client.until("ACK"))["ref_seq_num"] == 2
        await client.until("NewIndexOrder", client_order_id="ABC-DEF-GHI-1234", status="new")
        await client.until("IndexOrderFill", client_order_id="ABC-DEF-GHI-1234")
        invoice = await client.until("MintInvoice", client_order_id="ABC-DEF-GHI-1234")
        side_cr = invoice["position"]["side_cr"]  # what the test client's page shows
        assert Decimal(side_cr["spent_balance"]) == Decimal(invoice["amount_paid"])
        # A second order, then its cancel: the front end's cancel carries an extra `side`.
        await client.send(
            signed_by_test_client(
                key,
                "NewIndexOrder",
                client.seq,
                address,
                {**order, "amount": "5000", "client_order_id": "JKL-MNO-PQR-5678"},
            )
        )
        await client.until("ACK")
        await client.until("NewIndexOrder", client_order_id="JKL-MNO-PQR-5678", status="new")
        cancel = {
            "client_order_id": "JKL-MNO-PQR-5678",
            "symbol": "SY100",
            "side": "buy",
            "amount": "5000",
        }
        await client.send(
            signed_by_test_client(key, "CancelIndexOrder", client.seq, address, cancel)
        )
        await client.until("ACK")
        canceled = await client.until("CancelIndexOrder", client_order_id="JKL-MNO-PQR-5678")
        assert canceled["status"] == "canceled", canceled
    finally:
        await ws.close()

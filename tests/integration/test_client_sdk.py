"""The client SDK end to end over real loopback sockets against an in-process Service.

Every wait is bounded (`asyncio.timeout`), every service and proxy is stopped in `finally`.
What the SDK received is compared with what the engine handed to the FIX server for that
client (SentLog), so "nothing lost, nothing twice" is checked against the source.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from indexmaker.app.service import Service
from indexmaker.core.events import IndexOrderFill, MintInvoice
from indexmaker.core.money import round_usdc
from indexmaker.engine.throttle import RateLimit
from indexmaker.server import client as sdk
from indexmaker.server.session import SessionConfig
from indexmaker.server.signing import Signer

from .conftest import MS, TEST_KEYS, SentLog, TcpProxy, sdk_fast_config, sdk_start_service

MICRO = Decimal("0.000001")


def assert_invoice_consistent(invoice: sdk.Invoice) -> None:
    # The invoice derives amount_remaining and assets_value from its other figures, so sums of
    # its own fields prove nothing; the lots behind the tokens are an independent record.
    exact_value = sum((lot.price * lot.assigned_quantity for lot in invoice.lots), Decimal(0))
    assert abs(invoice.assets_value - round_usdc(exact_value)) <= MICRO
    lot_fees = sum((lot.assigned_fee for lot in invoice.lots), Decimal(0))
    assert abs(invoice.exchange_fee - lot_fees) <= MICRO * len(invoice.lots)
    assert invoice.amount_remaining >= 0 and invoice.filled_quantity > 0


def same_invoice(received: sdk.Invoice, sent: MintInvoice) -> None:
    for name in (f.name for f in fields(MintInvoice)):
        if name in ("lots", "timestamp", "position"):
            continue
        assert getattr(received, name) == getattr(sent, name), name
    assert received.position is not None and sent.position is not None
    assert (received.position.ready, received.position.spent) == (
        sent.position.ready,
        sent.position.spent,
    )
    assert [(lot.lot_id, lot.price, lot.assigned_quantity) for lot in received.lots] == [
        (str(lot.lot_id), lot.price, lot.quantity) for lot in sent.lots
    ]


def fill_tuple(fill: sdk.Fill | IndexOrderFill) -> tuple[object, ...]:
    status = fill.status if isinstance(fill, sdk.Fill) else fill.status.value
    return (
        fill.client_order_id,
        fill.filled_quantity,
        fill.collateral_spent,
        fill.collateral_remaining,
        fill.fill_rate,
        status,
    )


async def test_order_fills_and_invoice_end_to_end(sdk_service: tuple[Service, SentLog]) -> None:
    service, sent = sdk_service
    events: list[sdk.Event] = []
    async with asyncio.timeout(20), sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as c:
        c.on_event = events.append
        assert c.server_address == service.signer.address  # learnt from GET /info
        quote = await c.quote("SY100", "buy", Decimal(1000))
        assert isinstance(quote.quantity_possible, Decimal) and quote.quantity_possible > 0
        await sdk.sim_deposit(c.url, c.address, Decimal(1000))
        accepted = await c.new_order("SY100", "buy", Decimal(1000), "e2e-1")
        assert accepted.accepted and accepted.client_order_id == "e2e-1"
        invoice = await c.wait_minted("e2e-1", timeout=15)
        assert await c.wait_minted("e2e-1", timeout=0) is invoice  # kept once arrived

    assert_invoice_consistent(invoice)
    assert invoice.total_amount == Decimal(1000) and invoice.symbol == "SY100"
    # The collateral position after the mint: the change is ready again, nothing in flight.
    position = invoice.position
    assert position is not None and position.spent == invoice.amount_paid
    assert (position.unconfirmed, position.preauth) == (0, 0)
    assert position.ready == invoice.amount_remaining
    fills = c.fills["e2e-1"]
    assert fills[0].status == "collateral ready" and fills[-1].status.endswith("mintable")
    assert fills[-1].collateral_spent == invoice.amount_paid
    assert fills[-1].filled_quantity == invoice.filled_quantity
    # Exactly what the engine sent, each once, in order.
    mine = sent.to(c.address)
    assert [fill_tuple(f) for f in fills] == [
        fill_tuple(m) for m in mine if isinstance(m, IndexOrderFill)
    ]
    [server_invoice] = [m for m in mine if isinstance(m, MintInvoice)]
    same_invoice(invoice, server_invoice)
    # Per-session seq_nums contiguous, every frame verified, no resends needed.
    assert not [e for e in events if isinstance(e, sdk.SequenceGap | sdk.Unverified)]
    seqs = [e.seq_num for e in events if isinstance(e, sdk.ServerMessage)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [e.ref_seq_num for e in events if isinstance(e, sdk.Ack)] == [1, 2]


async def test_rejections_naks_and_cancel(sdk_service: tuple[Service, SentLog]) -> None:
    service, _ = sdk_service
    async with asyncio.timeout(20), sdk.IndexMakerClient(service.server.url, TEST_KEYS[1]) as c:
        unknown = await c.new_order("SYXX", "buy", Decimal(10))
        assert not unknown.accepted and unknown.reason == "unknown symbol SYXX"
        with pytest.raises(sdk.RequestRejected, match="unknown symbol SYXX"):
            await c.quote("SYXX", "buy", Decimal(10))
        # No deposit: the order waits for collateral, so it can be cancelled whole.
        waiting = await c.new_order("SY100", "b", "250.5", "wait-1")
        assert waiting.accepted
        duplicate = await c.new_order("SY100", "buy", Decimal(5), "wait-1")
        assert not duplicate.accepted and "duplicate" in (duplicate.reason or "")
        canceled = await c.cancel("SY100", "wait-1", Decimal("250.5"))
        assert canceled.status == "canceled"
        again = await c.cancel("SY100", "wait-1", Decimal(1))
        assert again.status == "rejected" and "no open order" in (again.reason or "")
        # Bad input is refused before anything is sent, naming the field.
        with pytest.raises(ValueError, match="amount: more than 6 decimals"):
            await c.new_order("SY100", "buy", "1.0000001")
        with pytest.raises(ValueError, match="side:"):
            await c.new_order("SY100", "up", Decimal(1))
        with pytest.raises(TypeError, match="amount"):
            await c.new_order("SY100", "buy", 1.5)  # type: ignore[arg-type]
        seq_before = c._out_seq
    # A NAK from the server (chain not served) raises with its reason, nothing advances.
    async with (
        asyncio.timeout(10),
        sdk.IndexMakerClient(service.server.url, TEST_KEYS[1], chain_id=1) as other,
    ):
        with pytest.raises(sdk.NakError, match="chain_id: 1 is not served here"):
            await other.new_order("SY100", "buy", Decimal(10))
        assert other._out_seq == 1
    assert seq_before == 7  # 6 ACKed messages


async def test_rate_limit_nak_is_waited_out_and_retried() -> None:
    tight = SessionConfig(session_limits=(RateLimit("session_1s", 20, timedelta(seconds=1)),))
    service, _ = await sdk_start_service(sdk_fast_config(session=tight))
    events: list[sdk.Event] = []
    try:
        async with asyncio.timeout(15), sdk.IndexMakerClient(service.server.url, TEST_KEYS[2]) as c:
            c.on_event = events.append
            for n in range(3):  # weight 10 each: the third waits for the window
                assert (await c.new_order("SY100", "buy", Decimal(100), f"rl-{n}")).accepted
    finally:
        await service.stop()
    naks = [e for e in events if isinstance(e, sdk.Nak)]
    assert naks and naks[0].retry_after is not None
    assert (naks[0].ref_seq_num, naks[0].refused_seq_num) == (2, 3)  # SPEC §5
    assert [e.ref_seq_num for e in events if isinstance(e, sdk.Ack)] == [1, 2, 3]


class TamperingSigner:
    """The server's signer, but every signature has one bit flipped."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def trailer_for(self, msg_type: str, signed_id: str) -> dict[str, list[str]]:
        trailer = self._signer.trailer_for(msg_type, signed_id)
        sig = trailer["signature"][0]
        flipped = sig[:-1] + format(int(sig[-1], 16) ^ 1, "x")
        return {"public_key": trailer["public_key"], "signature": [flipped]}

    def sign_full(self, frame: dict[str, Any]) -> dict[str, list[str]]:
        trailer = self._signer.sign_full(frame)
        sig = trailer["signature"][0]
        flipped = sig[:-1] + format(int(sig[-1], 16) ^ 1, "x")
        return {"public_key": trailer["public_key"], "signature": [flipped]}


async def test_tampered_server_signature_is_refused(
    sdk_service: tuple[Service, SentLog],
) -> None:
    service, _ = sdk_service
    original = service.server._signer
    service.server._signer = TamperingSigner(original)  # type: ignore[assignment]
    service.server.hub._full_signer = TamperingSigner(original)
    events: list[sdk.Event] = []
    async with asyncio.timeout(10), sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as c:
        c.on_event = events.append
        with pytest.raises(sdk.ServerSignatureError, match="does not verify"):
            await c.new_order("SY100", "buy", Decimal(10), "tampered-1")
        assert c.unverified and "ACK" in c.unverified[0].raw
        assert not [e for e in events if isinstance(e, sdk.Ack)]  # never believed
        assert isinstance(events[-1], sdk.Unverified)


async def test_messages_signed_by_another_key_are_refused(
    sdk_service: tuple[Service, SentLog],
) -> None:
    service, _ = sdk_service
    impostor = Signer(TEST_KEYS[2]).address  # the client expects this server
    async with (
        asyncio.timeout(10),
        sdk.IndexMakerClient(service.server.url, TEST_KEYS[0], server_address=impostor) as c,
    ):
        with pytest.raises(sdk.ServerSignatureError, match="does not match address"):
            await c.quote("SY100", "buy", Decimal(10))


async def test_reconnect_and_resume_lose_nothing() -> None:
    # Slower collateral so the order is still in progress while the link is down.
    service, sent = await sdk_start_service(sdk_fast_config(bridge_delay=300 * MS))
    proxy = TcpProxy(service.server.bound_port)
    await proxy.start()
    events: list[sdk.Event] = []
    try:
        async with asyncio.timeout(25):
            async with sdk.IndexMakerClient(
                proxy.url(), TEST_KEYS[0], server_address=service.signer.address
            ) as c:
                c.on_event = events.append
                await sdk.sim_deposit(service.server.url, c.address, Decimal(3000))
                assert (await c.new_order("SY100", "buy", Decimal(1000), "rs-1")).accepted
                proxy.cut()  # mid-order: collateral still on its way
                await asyncio.sleep(0.2)
                # A request made while the link is down waits, then goes on the new session.
                second = asyncio.create_task(c.new_order("SY100", "buy", Decimal(500), "rs-2"))
                await asyncio.sleep(0.6)
                proxy.restore()
                assert (await second).accepted
                first = await c.wait_minted("rs-1", timeout=15)
                proxy.cut()  # once more, between the two mints
                await asyncio.sleep(0.3)
                proxy.restore()
                last = await c.wait_minted("rs-2", timeout=15)
    finally:
        await proxy.stop()
        await service.stop()

    assert proxy.cuts >= 2
    connects = [e for e in events if isinstance(e, sdk.Connected)]
    assert len(connects) >= 2 and all(e.resumed_from is not None for e in connects)
    assert any(isinstance(e, sdk.ServerMessage) and e.poss_dup for e in events)
    # Every fill and invoice the engine sent arrived exactly once (duplicates dropped).
    mine = sent.to(c.address)
    for cid, invoice in (("rs-1", first), ("rs-2", last)):
        expected = [fill_tuple(m) for m in mine if isinstance(m, IndexOrderFill)]
        expected = [f for f in expected if f[0] == cid]
        assert [fill_tuple(f) for f in c.fills[cid]] == expected
        got = [e for e in events if isinstance(e, sdk.Fill) and e.client_order_id == cid]
        assert len(got) == len(expected)
        invoices = [e for e in events if isinstance(e, sdk.Invoice) and e.client_order_id == cid]
        assert invoices == [invoice]
        assert_invoice_consistent(invoice)
    server_seqs = [e.server_seq for e in events if isinstance(e, sdk.ServerMessage)]
    stored = [s for s in server_seqs if s is not None]
    assert len(stored) == len(set(stored))
    assert not [e for e in events if isinstance(e, sdk.Unverified)]


async def test_watching_session_resumes_history_and_sees_live_fills(
    sdk_service: tuple[Service, SentLog],
) -> None:
    service, _ = sdk_service
    url = service.server.url
    async with asyncio.timeout(20):
        async with sdk.IndexMakerClient(url, TEST_KEYS[1]) as trader:
            await sdk.sim_deposit(url, trader.address, Decimal(600))
            assert (await trader.new_order("SY100", "buy", Decimal(200), "w-1")).accepted
            await trader.wait_minted("w-1", timeout=15)
            # A second session of the same wallet: resumes from 0 (authenticated by the
            # signed ResendRequest), gets the history marked poss_dup, then live fills.
            async with sdk.IndexMakerClient(url, TEST_KEYS[1], resume_from=0) as watcher:
                assert (await watcher.wait_minted("w-1", timeout=5)).poss_dup
                assert all(f.poss_dup for f in watcher.fills["w-1"])
                assert (await trader.new_order("SY100", "buy", Decimal(200), "w-2")).accepted
                live = await watcher.wait_minted("w-2", timeout=15)
                assert not live.poss_dup
                await trader.wait_minted("w-2", timeout=5)
                assert [fill_tuple(f) for f in watcher.fills["w-2"]] == [
                    fill_tuple(f) for f in trader.fills["w-2"]
                ]

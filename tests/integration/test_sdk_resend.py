"""A request in flight when the link dies is resent without being taken twice (issue 8).

Over real loopback sockets: the SDK talks to an in-process Service through a TcpProxy that
swallows one direction and is then cut. A resend carries the first copy's id and nonce, so
when the server had already taken the request the copy is refused as a replay and the SDK
answers with the original response (from the resume); when the request never arrived the
copy is taken normally. Checked against what the engine sent (SentLog): one answer per cancel.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from indexmaker.core.events import CancelIndexOrderResponse, NewIndexOrderResponse
from indexmaker.server import client as sdk

from .conftest import TEST_KEYS, SentLog, TcpProxy, sdk_start_service


def cancels_sent(sent: SentLog, address: str, cid: str) -> list[CancelIndexOrderResponse]:
    return [
        m
        for m in sent.to(address)
        if isinstance(m, CancelIndexOrderResponse) and m.client_order_id == cid
    ]


async def until(condition: object, what: str) -> None:
    async with asyncio.timeout(5):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("lost", "extended"),
    [("replies", True), ("replies", False), ("requests", True)],
    ids=["ack-lost-extended", "ack-lost-reference", "request-lost"],
)
async def test_cancel_in_flight_at_a_drop_is_applied_once(lost: str, extended: bool) -> None:
    service, sent = await sdk_start_service()
    proxy = TcpProxy(service.server.bound_port)
    await proxy.start()
    events: list[sdk.Event] = []
    try:
        async with (
            asyncio.timeout(20),
            sdk.IndexMakerClient(
                proxy.url(), TEST_KEYS[1], server_address=service.signer.address, extended=extended
            ) as c,
        ):
            c.on_event = events.append
            # No deposit: the order waits for collateral, so its amount stays cancellable.
            assert (await c.new_order("SY100", "buy", Decimal(250), "drop-1")).accepted
            proxy.swallow(lost)
            cancel = asyncio.create_task(c.cancel("SY100", "drop-1", Decimal(100)))
            if lost == "replies":  # the server takes the cancel; its ACK never arrives
                await until(lambda: cancels_sent(sent, c.address, "drop-1"), "the cancel")
            else:  # the frame is lost on its way: the server never sees it
                await asyncio.sleep(0.3)
                assert not cancels_sent(sent, c.address, "drop-1")
            assert not cancel.done()
            proxy.cut()
            proxy.restore()
            first = await cancel
            assert first.status == "canceled"
            assert len(cancels_sent(sent, c.address, "drop-1")) == 1  # taken once
            if extended:  # (a reference signature cancels an order once: SPEC §5 Replay)
                # 150 of the 250 are left: a second cancel taking 100 would have left 50.
                rest = await c.cancel("SY100", "drop-1", Decimal(150))
                assert rest.status == "canceled", rest.reason
                nothing = await c.cancel("SY100", "drop-1", Decimal(1))
                assert nothing.status == "rejected"
    finally:
        await proxy.stop()
        await service.stop()
    assert proxy.cuts >= 1
    assert [e.session for e in events if isinstance(e, sdk.Connected)] == [2]  # one reconnect
    naks = [e for e in events if isinstance(e, sdk.Nak)]
    if lost == "replies":  # the copy was refused as a replay, and nothing else was
        assert [n.reason.split(":")[0] for n in naks] == ["Replayed signature"]
    else:
        assert naks == []


@pytest.mark.parametrize("extended", [True, False], ids=["extended", "reference"])
async def test_an_order_whose_ack_was_lost_is_placed_once_and_its_acceptance_returned(
    extended: bool,
) -> None:
    """Before: a reference-signed order resent after the drop was refused as a replay and
    the SDK raised, although the order had been placed."""
    service, sent = await sdk_start_service()
    proxy = TcpProxy(service.server.bound_port)
    await proxy.start()
    try:
        async with (
            asyncio.timeout(20),
            sdk.IndexMakerClient(
                proxy.url(), TEST_KEYS[2], server_address=service.signer.address, extended=extended
            ) as c,
        ):
            await c.quote("SY100", "buy", Decimal(10))  # the session works before the cut
            proxy.swallow("replies")
            order = asyncio.create_task(c.new_order("SY100", "buy", Decimal(300), "lost-ack"))

            def answered() -> list[NewIndexOrderResponse]:
                return [
                    m
                    for m in sent.to(c.address)
                    if isinstance(m, NewIndexOrderResponse) and m.client_order_id == "lost-ack"
                ]

            await until(answered, "the order's acceptance")
            proxy.cut()
            proxy.restore()
            accepted = await order
            assert accepted.accepted and accepted.client_order_id == "lost-ack"
            assert len(answered()) == 1  # placed once: no duplicate-id rejection either
    finally:
        await proxy.stop()
        await service.stop()

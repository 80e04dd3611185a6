"""Replayed authority (issue 8, SPEC §5 Replay and Authentication), attacked over real sockets.

Each attack of the issue is replayed here by an independent wire client (the one of
tests/integration/test_protocol.py: raw aiohttp frames, eth-account signatures, every server
frame checked): a stranger re-sends what it captured from a victim and must get neither the
victim's private messages nor any effect on the victim's orders. Loops are bounded; every
receive has a timeout.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from eth_account import Account

from indexmaker.core.ids import ClientOrderId
from integration.test_protocol import (
    ORDER,
    QUOTE,
    Live,
    Wire,
    fast_config,
    now_rfc3339,
    start_live,
)

PRIVATE = {"NewIndexOrder", "CancelIndexOrder", "IndexOrderFill", "MintInvoice"}


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    live = await start_live(fast_config())
    try:
        yield live
    finally:
        await live.http.close()
        await live.stop()


def replayed(frame: dict[str, Any], seq: int) -> dict[str, Any]:
    """A captured frame with a fresh header, as a replaying stranger sends it."""
    copy = json.loads(json.dumps(frame))
    copy["standard_header"].update(seq_num=seq, timestamp=now_rfc3339())
    return copy


def private_frames(wire: Wire) -> list[dict[str, Any]]:
    return [f for f in wire.received if f["standard_header"]["msg_type"] in PRIVATE]


async def test_captured_resend_request_authenticates_nothing(live: Live) -> None:
    victim = await live.connect()
    challenge = await victim.challenge()
    captured = victim.build("ResendRequest", {"last_server_seq": 0, "challenge": challenge})
    await victim.send(captured)
    await victim.expect("ACK", ref_seq_num=2)
    victim.seq = 2
    # The stranger replays the victim's signed ResendRequest on its own session...
    stranger = await live.connect(victim.account)
    await stranger.refused(replayed(captured, 1), "challenge: not issued to this session")
    # ...or after asking for a challenge of its own, naming it (the signature then fails)...
    own = await stranger.challenge()
    forged = replayed(captured, 2)
    forged["challenge"] = own
    await stranger.refused(forged, "Not authorised")
    # ...and the victim's own session cannot spend the same challenge twice.
    await victim.refused(replayed(captured, 3), "challenge: not issued to this session")
    # Meanwhile the victim's order fills and is minted: the stranger sees none of it.
    await live.deposit(victim.address, "1500")
    await victim.request("NewIndexOrder", {"client_order_id": "v-1", **ORDER})
    await victim.expect("MintInvoice", client_order_id="v-1", timeout=10)
    await stranger.nothing_more()
    assert private_frames(stranger) == []


async def test_captured_order_authenticates_nothing_and_places_nothing(live: Live) -> None:
    victim = await live.connect()
    captured = victim.build("NewIndexOrder", {"client_order_id": "v-o", **ORDER})
    await victim.send(captured)
    await victim.expect("ACK", ref_seq_num=1)
    victim.seq = 1
    await victim.expect("NewIndexOrder", client_order_id="v-o")
    stranger = await live.connect(Account.create())
    await stranger.refused(replayed(captured, 1), "Replayed signature", ref=0, refused_seq=1)
    update = live.service.engine.orders.update(victim.key, ClientOrderId("v-o"))
    assert update is not None and update.amount == 1000  # one order, not two
    await live.deposit(victim.address, "1500")
    await victim.expect("MintInvoice", client_order_id="v-o", timeout=10)
    await stranger.nothing_more()
    assert private_frames(stranger) == []


async def test_captured_cancel_with_a_larger_amount_is_refused(live: Live) -> None:
    victim = await live.connect()  # no deposit: the whole order stays cancellable
    await victim.request("NewIndexOrder", {"client_order_id": "c-1", **ORDER})
    await victim.expect("NewIndexOrder", client_order_id="c-1")
    cancel = victim.build(
        "CancelIndexOrder", {"client_order_id": "c-1", "symbol": "SY100", "amount": "100"}
    )
    await victim.send(cancel)
    await victim.expect("ACK", ref_seq_num=2)
    victim.seq = 2
    assert (await victim.expect("CancelIndexOrder", client_order_id="c-1"))["status"] == "canceled"
    bigger = replayed(cancel, 1)
    bigger["amount"] = "900"
    stranger = await live.connect(Account.create())
    await stranger.refused(bigger, "Replayed signature", ref=0, refused_seq=1)
    again = replayed(cancel, 3)
    again["amount"] = "900"
    await victim.refused(again, "Replayed signature", ref=2, refused_seq=3)
    update = live.service.engine.orders.update(victim.key, ClientOrderId("c-1"))
    assert update is not None and update.amount == 900  # only the signed 100 was taken


async def test_a_delivered_order_altered_and_resent_is_refused(live: Live) -> None:
    """Reference-style text covers only msg_type and id: an altered copy of a delivered
    order is refused by the one-use rule (the extended text refuses it outright)."""
    victim = await live.connect()
    order = victim.build("NewIndexOrder", {"client_order_id": "a-1", **ORDER})
    await victim.send(order)
    await victim.expect("ACK", ref_seq_num=1)
    victim.seq = 1
    for field, value in (("amount", "5000"), ("side", "sell")):
        altered = replayed(order, victim.seq + 1)
        altered[field] = value
        await victim.refused(altered, "Replayed signature")
    update = live.service.engine.orders.update(victim.key, ClientOrderId("a-1"))
    assert update is not None and update.amount == 1000


async def test_an_unsigned_quote_claiming_an_address_yields_none_of_its_data(live: Live) -> None:
    victim = await live.connect()
    await victim.authenticate()
    squatter = await live.connect(victim.account)  # claims the victim's address, unsigned
    await squatter.request("NewQuoteRequest", {"client_quote_id": "s-q", **QUOTE})
    await squatter.expect("NewIndexQuote", client_quote_id="s-q")
    await squatter.expect("IndexQuoteResponse", client_quote_id="s-q")
    # The victim's own quote and order: their answers go to the victim only.
    await victim.request("NewQuoteRequest", {"client_quote_id": "v-q", **QUOTE})
    await victim.expect("IndexQuoteResponse", client_quote_id="v-q")
    await live.deposit(victim.address, "1500")
    await victim.request("NewIndexOrder", {"client_order_id": "v-2", **ORDER})
    await victim.expect("MintInvoice", client_order_id="v-2", timeout=10)
    await squatter.nothing_more()
    assert private_frames(squatter) == []
    assert all(f.get("client_quote_id") in (None, "s-q") for f in squatter.received)
    assert all(f.get("client_quote_id") != "s-q" for f in victim.received)


async def test_private_messages_go_only_where_that_client_authenticated(live: Live) -> None:
    """One socket carrying two clients: authenticated for one of them only."""
    alice, bob = Account.create(), Account.create()
    shared = await live.connect(alice)
    await shared.authenticate()
    quote = shared.build("NewQuoteRequest", {"client_quote_id": "bq", **QUOTE})
    quote["address"] = bob.address
    await shared.send(quote)
    await shared.expect("ACK", ref_seq_num=shared.seq + 1)
    shared.seq += 1
    await shared.expect("NewIndexQuote", client_quote_id="bq")
    await shared.expect("IndexQuoteResponse", client_quote_id="bq")
    bob_wire = await live.connect(bob)
    await bob_wire.request("NewIndexOrder", {"client_order_id": "b-1", **ORDER})
    await bob_wire.expect("NewIndexOrder", client_order_id="b-1")
    await shared.request("NewIndexOrder", {"client_order_id": "a-1", **ORDER})
    await shared.expect("NewIndexOrder", client_order_id="a-1")
    await shared.nothing_more()
    assert all(f["address"] == alice.address.lower() for f in private_frames(shared))

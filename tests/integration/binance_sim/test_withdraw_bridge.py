"""The `withdraw` hop of `serve --venue binance` on the simulated chain ([sim] withdraw_to;
chain/exchange_withdrawals.py) against the exchange simulator's wallet API over HTTP: a
redemption's proceeds leave the exchange under the redemption's id, and the hop sent again
by a restarted service (a new bridge, the same key) withdraws nothing more and completes with
what the first withdrawal sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from indexmaker.app.binance_wiring import exchange_sim_access
from indexmaker.chain.exchange_wallet import ExchangeWallet
from indexmaker.chain.exchange_withdrawals import ExchangeWithdrawBridge
from indexmaker.core.chain_events import RouteCollateral
from indexmaker.core.events import EngineInput, HopCompleted, HopReport, HopState, QueryHop
from indexmaker.core.ids import ClientKey, Designation, TransferId, client_key
from indexmaker.venues.binance.rest import BinanceRest

from .conftest import SimProcess, balance, rest

ID = "R7"  # a redemption's id: the withdrawal's withdrawOrderId
TO = "0x000000000000000000000000000000000000c057"
CLIENT: ClientKey = client_key(42161, "0x" + "a1" * 20)


def _bridge(sim: SimProcess) -> ExchangeWithdrawBridge:
    wallet = ExchangeWallet(BinanceRest(*exchange_sim_access(sim.url)), poll_s=0.05)
    return ExchangeWithdrawBridge("withdraw", wallet, TO, timeout_s=20)


async def _hop(bridge: ExchangeWithdrawBridge, command: RouteCollateral) -> list[EngineInput]:
    heard: list[EngineInput] = []

    async def sink(event: EngineInput) -> None:
        heard.append(event)

    await bridge.start(sink)
    try:
        await bridge.relay(command)
        for _ in range(400):  # bounded: the simulator completes a withdrawal within ~1 s
            if heard:
                break
            await asyncio.sleep(0.025)
        status = await bridge.hop_status(QueryHop(command.transfer_id, "withdraw", command.amount))
    finally:
        await bridge.stop()
        await bridge.wallet.rest.close()
    return [*heard, status]


async def test_proceeds_are_withdrawn_once_under_the_redemption_id(sim: SimProcess) -> None:
    command = RouteCollateral(
        TransferId(ID),
        CLIENT,
        "withdraw",
        Designation("BINANCE:MAIN:USDC"),
        Designation("EVM:BASE:USDC"),
        Decimal("98.25"),
    )
    before = balance(sim, "USDC")[0]
    first = await _hop(_bridge(sim), command)
    again = await _hop(_bridge(sim), command)  # a restarted service sends the hop again
    assert isinstance(first[0], HopCompleted) and first[0].transfer_id == ID
    fee = command.amount - first[0].amount_received
    assert fee > 0 and first[0].fee == fee  # the network's fee comes off the proceeds
    assert first == again  # the first withdrawal's outcome, nothing more withdrawn
    assert isinstance(first[1], HopReport) and first[1].state is HopState.DONE
    _, _, rows = await asyncio.to_thread(
        rest, sim, "GET", "/sapi/v1/capital/withdraw/history", coin="USDC", withdrawOrderId=ID
    )
    (row,) = rows
    assert row["status"] == 6 and row["address"] == TO
    assert Decimal(row["amount"]) == first[0].amount_received
    assert before - balance(sim, "USDC")[0] == command.amount  # debited exactly the proceeds

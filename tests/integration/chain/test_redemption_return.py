"""The way back (issue 12): a client who deposited on 42161 and redeems is paid on 42161; the
proceeds leave the exchange for 8453's custody, cross Across back (our relayer fills on
42161) to custody there, which pays the client. Its own pair of chains: each module's service
numbers its payments from P1, and custody refuses a payment id twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from eth_account import Account
from web3 import Web3

from indexmaker.chain import artifacts
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.core.events import NewIndexOrderRequest
from indexmaker.core.ids import ClientOrderId, Symbol, client_key
from indexmaker.core.money import index_to_units, usdc_to_units
from indexmaker.core.redemption_events import RedemptionInvoice
from indexmaker.model.side import Side

from . import path_harness as h
from .test_redemption_path import _approve_sync, bought

CHAINS = (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)


def _usdc_sync(chains: h.LocalChains, chain_id: int, holder: str) -> int:
    w3 = Web3(Web3.HTTPProvider(chains.url(chain_id)))
    section = chains.sections[chain_id]
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    return int(usdc.functions.balanceOf(holder).call())


async def test_a_client_of_42161_is_paid_on_42161_after_the_proceeds_cross_back(
    chains: h.LocalChains, running: Callable[..., h.Running]
) -> None:
    client = Account.from_key(h.CLIENT_KEYS[1])
    service = running()
    minted = await bought(chains, service, SOURCE_CHAIN_ID, client)
    await asyncio.to_thread(_approve_sync, chains, client, index_to_units(minted.filled_quantity))
    before = {c: await asyncio.to_thread(_usdc_sync, chains, c, client.address) for c in CHAINS}
    assert service.service is not None
    key = client_key(SOURCE_CHAIN_ID, client.address)
    sell = NewIndexOrderRequest(
        key, ClientOrderId("sell-arb"), Symbol(h.INDEX), Side.SELL, minted.filled_quantity
    )
    service.service.runtime.submit(sell)

    def redeemed() -> list[RedemptionInvoice]:
        return [m for m in service.sent.to(client.address) if isinstance(m, RedemptionInvoice)]

    await h.until(lambda: bool(redeemed()), "the redemption invoice", timeout_s=120)
    (invoice,) = redeemed()
    after = {c: await asyncio.to_thread(_usdc_sync, chains, c, client.address) for c in CHAINS}
    # Paid on 42161, by custody there; nothing on 8453.
    assert after[SOURCE_CHAIN_ID] - before[SOURCE_CHAIN_ID] == usdc_to_units(invoice.net_paid)
    assert after[TRADING_CHAIN_ID] == before[TRADING_CHAIN_ID] and invoice.net_paid > 0
    w3 = Web3(Web3.HTTPProvider(chains.url(SOURCE_CHAIN_ID)))
    assert invoice.payout_tx is not None
    receipt = w3.eth.get_transaction_receipt(invoice.payout_tx)
    assert receipt["status"] == 1 and receipt["to"] == chains.sections[SOURCE_CHAIN_ID]["custody"]
    # The way back's fees are the client's: the exchange's 0.1, the bridge's 0.10 and its gas.
    assert Decimal("0.2") < invoice.withdrawal_fee < Decimal(3)
    assert invoice.net_paid == (
        invoice.gross_proceeds
        - invoice.exchange_fee
        - invoice.redemption_fee
        - invoice.withdrawal_fee
    )
    # Our relayer was repaid each fill's input on its origin: on 42161 for the way in, on 8453
    # (through the OP messenger's stand-in, contracts/AdminRelay.sol) for the way back.
    way_in, way_back = service.path.relayer.relayers
    await h.until(lambda: bool(way_in.repaid and way_back.repaid), "the relayer repaid", 30)
    assert way_in.repaid == way_in.filled and way_back.repaid == way_back.filled
    assert way_in.failed == way_back.failed == []

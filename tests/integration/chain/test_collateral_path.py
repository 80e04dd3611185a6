"""The collateral path end to end on two anvils (issue 11): a client's deposit into custody on
8453 goes straight to the exchange's deposit address, one on 42161 crosses Across (our relayer
fills on 8453) first; the exchange simulator credits each after watching the trading chain; the
orders fill through the Binance connector on it and the index tokens are minted on 8453 through
custody with the invoice's hash."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from eth_account import Account

from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID

from . import path_harness as h


@pytest.mark.slow
async def test_deposits_on_both_chains_are_routed_credited_and_minted(
    chains: h.LocalChains, running: Callable[..., h.Running]
) -> None:
    base_client, arb_client = Account.from_key(h.CLIENT_KEYS[0]), Account.from_key(h.CLIENT_KEYS[1])
    service = running()
    await service.start()
    await h.client_deposit(chains, TRADING_CHAIN_ID, base_client, 1000)
    await h.client_deposit(chains, SOURCE_CHAIN_ID, arb_client, 1000)
    h.client_order(service, TRADING_CHAIN_ID, base_client, 1000, "base-1")
    h.client_order(service, SOURCE_CHAIN_ID, arb_client, 1000, "arb-1")
    await h.until(
        lambda: bool(
            service.invoices(base_client.address) and service.invoices(arb_client.address)
        ),
        "both invoices",
    )
    (base_invoice,) = service.invoices(base_client.address)
    (arb_invoice,) = service.invoices(arb_client.address)
    for invoice, holder in ((base_invoice, base_client), (arb_invoice, arb_client)):
        assert invoice.filled_quantity > 0
        await h.check_minted(chains, invoice, holder.address)
    # Fees per hop: on 8453 the gas of custody's payment to the exchange; from 42161 also
    # the bridge's 0.10 USDC and the gas of the release, approval and Across deposit.
    base_fee, arb_fee = base_invoice.management_fee, arb_invoice.management_fee
    assert Decimal(0) < base_fee < Decimal(2) and Decimal("0.10") < arb_fee - base_fee < Decimal(5)
    # The collateral left both custodies: nothing stays behind, nothing moved twice.
    for chain_id in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID):
        assert await h.custody_usdc(chains, chain_id) < 10**6  # < 1 USDC of gas

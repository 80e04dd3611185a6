"""Deposits smaller than their route's cost (issue 11), on two anvils with the service, the
exchange simulator and our relayer: a 0.5 USDC deposit on 42161 (and a tiny one on 8453) is
held in custody as the client's (no release, no Across deposit, not in transit); the client's
next deposit there is routed with it as one hop, and what is ready at the exchange is the sum
less the bridge's fee and the gas of exactly those hops' transactions, to the micro-USDC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic
from indexmaker.chain.connector import disconnect
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.chain.eth_price import FixedEthPrice
from indexmaker.chain.hops import gas_cost_usdc, tx_hash
from indexmaker.chain.route_costs import ACROSS_GAS, RELEASE_GAS, RouteCostQuoter, RouteLeg
from indexmaker.core.ids import ClientKey, Designation, client_key
from indexmaker.core.money import usdc_text, usdc_to_units
from indexmaker.engine.collateral import CollateralLot
from indexmaker.engine.engine import SOURCE_CHAIN, TRADING_CHAIN, Engine

from . import path_harness as h

BRIDGE_FEE = Decimal("0.10")  # the harness's route (ChainPathSettings' default)


def _across_deposits(chains: h.LocalChains) -> list[tuple[dict[str, Any], str]]:
    """Every FundsDeposited on 42161's pool: its values and its transaction (blocking)."""
    section = chains.sections[SOURCE_CHAIN_ID]
    w3 = Web3(Web3.HTTPProvider(chains.url(SOURCE_CHAIN_ID)))
    abi = artifacts.across(section["spoke_pool_contract"])["abi"]
    pool = w3.eth.contract(address=section["spoke_pool"], abi=abi)
    topic = event_topic(abi, "FundsDeposited")
    raw = w3.eth.get_logs(
        {"address": pool.address, "fromBlock": 0, "toBlock": "latest", "topics": [topic]}
    )
    return [(dict(pool.events.FundsDeposited().process_log(g)["args"]), tx_hash(g)) for g in raw]


async def across_deposits(chains: h.LocalChains) -> list[tuple[dict[str, Any], str]]:
    return await asyncio.to_thread(_across_deposits, chains)


async def settle(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    """Wait for `condition` on the engine's own loop (its ledgers are read between inputs)."""
    for _ in range(int(timeout_s / 0.1)):  # bounded
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s}s")


def lots(engine: Engine, key: ClientKey) -> list[CollateralLot]:
    return list(engine.collateral.ledger(key).lots)


async def gas_of(running: h.Running, where: Designation, txs: list[str]) -> Decimal:
    """What the hop's transactions `txs` cost in USDC, as the hops charge it."""
    path = running.path.chain
    w3 = path.ports[where].w3
    receipts = [await w3.eth.get_transaction_receipt(tx) for tx in txs]  # type: ignore[arg-type]
    return gas_cost_usdc(receipts, await path.price.eth_usdc())


async def hold_then_route(
    running: h.Running, chain_id: int, client: Any, small: Decimal
) -> CollateralLot:
    """Deposit `small` on `chain_id`: held, nothing moves; deposit the route's cost more: one
    hop of both, ready. Returns the ready lot."""
    assert running.service is not None
    engine = running.service.engine
    key = client_key(chain_id, client.address)
    where = SOURCE_CHAIN if chain_id == SOURCE_CHAIN_ID else TRADING_CHAIN
    holds = engine.route_holds
    cost = holds.quoted(TRADING_CHAIN)
    if where == SOURCE_CHAIN:
        cost += holds.quoted(SOURCE_CHAIN)
    assert small < cost, f"anvil's gas made the route cost {cost}: no small deposit to try"
    chains = running.chains
    custody, across = await h.custody_usdc(chains, chain_id), await across_deposits(chains)
    await h.client_deposit(chains, chain_id, client, small)
    await settle(lambda: engine.collateral.position(key).held == small, "held")
    (lot,) = lots(engine, key)
    assert lot.held == f"held: below the route's cost {usdc_text(cost)} USDC on {where}"
    assert engine.collateral.position(key).unconfirmed == 0
    await asyncio.sleep(1.0)  # time for a wrong hop to show: none may
    assert engine.router.in_flight() == 0 and not lot.ready
    assert await h.custody_usdc(chains, chain_id) == custody + usdc_to_units(small)
    assert await across_deposits(chains) == across
    await h.client_deposit(chains, chain_id, client, cost)
    total = small + cost
    await settle(lambda: any(lot.ready for lot in lots(engine, key)), "ready")
    (lot,) = lots(engine, key)
    assert lot.gross == total and lot.name.count("+") == 1 and lot.hops[0] == "merged:2"
    # Custody released the combined amount, once: it holds what it held before.
    assert await h.custody_usdc(chains, chain_id) == custody
    position = engine.collateral.position(key)
    assert (position.held, position.unconfirmed, position.ready) == (0, 0, total)
    return lot


async def test_small_deposits_are_held_then_routed_together_on_both_chains(
    chains: h.LocalChains, running: Callable[..., h.Running]
) -> None:
    service = running()
    await service.start()
    assert service.service is not None
    engine = service.service.engine
    holds = engine.route_holds
    await settle(lambda: bool(holds.quoted(SOURCE_CHAIN) and holds.quoted(TRADING_CHAIN)), "quotes")
    source = service.path.chain.ports[SOURCE_CHAIN]
    trading = service.path.chain.ports[TRADING_CHAIN]

    arb = Account.from_key(h.CLIENT_KEYS[0])
    before = await across_deposits(chains)
    lot = await hold_then_route(service, SOURCE_CHAIN_ID, arb, Decimal("0.5"))
    ((deposit, deposit_tx),) = (await across_deposits(chains))[len(before) :]
    # One Across deposit of the sum; the relayer's fee off its output.
    assert deposit["inputAmount"] == usdc_to_units(lot.gross)
    assert deposit["outputAmount"] == usdc_to_units(lot.gross - BRIDGE_FEE)
    across_gas = await gas_of(
        service,
        SOURCE_CHAIN,
        [await source.released_tx(f"transfer:{lot.name}:across"), deposit_tx],
    )
    wallet_tx = await trading.released_tx(f"transfer:{lot.name}:wallet")
    wallet_gas = await gas_of(service, TRADING_CHAIN, [wallet_tx])
    assert lot.fee == BRIDGE_FEE + across_gas + wallet_gas
    assert engine.collateral.unspent(client_key(SOURCE_CHAIN_ID, arb.address)) == (
        lot.gross - BRIDGE_FEE - across_gas - wallet_gas
    )

    base = Account.from_key(h.CLIENT_KEYS[1])
    lot = await hold_then_route(service, TRADING_CHAIN_ID, base, Decimal("0.05"))
    wallet_tx = await trading.released_tx(f"transfer:{lot.name}:wallet")
    wallet_gas = await gas_of(service, TRADING_CHAIN, [wallet_tx])
    assert lot.hops == ["merged:2", "wallet"] and lot.fee == wallet_gas
    assert engine.collateral.unspent(client_key(TRADING_CHAIN_ID, base.address)) == (
        lot.gross - wallet_gas
    )


async def test_a_lot_that_arrives_below_the_next_hop_cost_is_held_where_it_arrived(
    chains: h.LocalChains, running: Callable[..., h.Running]
) -> None:
    """Gas (in USDC) triples between the quote and the Across hop: the lot arrives on 8453 with
    less than the wallet hop costs. It is held there as the client's (custody keeps the
    relayer's output; no release, no revert), and the client's next deposit on 42161, arriving
    there, is merged with it into one wallet hop."""
    service = running()
    await service.start()
    assert service.service is not None
    engine, bridge = service.service.engine, service.path.bridges["across"]
    holds = engine.route_holds
    await settle(lambda: bool(holds.quoted(SOURCE_CHAIN) and holds.quoted(TRADING_CHAIN)), "quotes")
    across_cost, wallet_cost = holds.quoted(SOURCE_CHAIN), holds.quoted(TRADING_CHAIN)
    price = bridge.price
    eth_usdc = await price.eth_usdc()
    # The hop's release and deposit use about 155,425 gas units at the chain's price now.
    w3 = service.path.chain.ports[SOURCE_CHAIN].w3
    wei = int((await w3.eth.get_block("latest"))["baseFeePerGas"]) + await w3.eth.max_priority_fee
    tripled = Decimal(155_425 * wei).scaleb(-18) * 3 * eth_usdc
    amount = (BRIDGE_FEE + tripled + wallet_cost / 3).quantize(Decimal("0.000001"))
    assert amount > across_cost + wallet_cost  # routed: the quote says it pays its route
    bridge.price = FixedEthPrice(3 * eth_usdc)
    client = Account.from_key(h.CLIENT_KEYS[2])
    key = client_key(SOURCE_CHAIN_ID, client.address)
    custody = await h.custody_usdc(chains, TRADING_CHAIN_ID)
    await h.client_deposit(chains, SOURCE_CHAIN_ID, client, amount)
    await settle(lambda: any(lot.below_cost for lot in lots(engine, key)), "held on 8453")
    bridge.price = price
    (lot,) = lots(engine, key)
    assert lot.location == TRADING_CHAIN and lot.hops == ["across"] and lot.gross == amount
    assert 0 < lot.net < wallet_cost, (lot.net, wallet_cost)
    assert (
        lot.held == f"held: below the route's cost {usdc_text(wallet_cost)} USDC on {TRADING_CHAIN}"
    )
    await asyncio.sleep(1.0)  # time for a wrong wallet hop to show: none may
    assert engine.router.in_flight() == 0 and engine.collateral.position(key).held == amount
    # The relayer's output stays in custody on 8453, released to nobody.
    output = usdc_to_units(amount - BRIDGE_FEE)
    assert await h.custody_usdc(chains, TRADING_CHAIN_ID) == custody + output
    first, arrived = lot.name, lot.net
    await h.client_deposit(chains, SOURCE_CHAIN_ID, client, 5)
    await settle(lambda: any(lot.ready for lot in lots(engine, key)), "ready")
    (lot,) = lots(engine, key)
    assert lot.name.startswith(first + "+") and lot.hops == ["across", "merged:2", "wallet"]
    assert lot.gross == amount + 5 and position_is_ready(engine, key, lot.gross)
    wallet_tx = await service.path.chain.ports[TRADING_CHAIN].released_tx(
        f"transfer:{lot.name}:wallet"
    )
    receipt = await service.path.chain.ports[TRADING_CHAIN].w3.eth.get_transaction_receipt(
        wallet_tx  # type: ignore[arg-type]
    )
    assert receipt["status"] == 1 and lot.net > arrived


def position_is_ready(engine: Engine, key: ClientKey, gross: Decimal) -> bool:
    position = engine.collateral.position(key)
    return (position.held, position.unconfirmed, position.ready) == (0, 0, gross)


async def test_route_costs_are_quoted_again_only_when_gas_moves(chains: h.LocalChains) -> None:
    """The quoter on both anvils: a quote per hop at first, none while gas stands still, a new
    one for the chain whose base fee jumped (anvil_setNextBlockBaseFeePerGas, then a block)."""
    w3s = {
        c: AsyncWeb3(AsyncHTTPProvider(chains.url(c))) for c in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)
    }
    legs = [
        RouteLeg(SOURCE_CHAIN, "across", w3s[SOURCE_CHAIN_ID], ACROSS_GAS, BRIDGE_FEE),
        RouteLeg(TRADING_CHAIN, "wallet", w3s[TRADING_CHAIN_ID], RELEASE_GAS),
    ]
    try:
        await _quotes_follow_gas(legs, w3s[TRADING_CHAIN_ID])
    finally:
        for w3 in w3s.values():
            await disconnect(w3)


async def _quotes_follow_gas(legs: list[RouteLeg], w3: AsyncWeb3[Any]) -> None:
    quoter = RouteCostQuoter(legs, FixedEthPrice(Decimal(3000)))
    sent: list[Any] = []

    async def sink(event: Any) -> None:
        sent.append(event)

    await quoter.quote_all(sink)
    assert [(q.source, q.bridge) for q in sent] == [
        (SOURCE_CHAIN, "across"),
        (TRADING_CHAIN, "wallet"),
    ]
    across, wallet = sent
    assert across.cost > BRIDGE_FEE and wallet.cost > 0
    await quoter.quote_all(sink)
    assert len(sent) == 2  # nothing moved: nothing new in the journal
    block = await w3.eth.get_block("latest")
    spiked = 20 * int(block["baseFeePerGas"]) + 10**10
    await w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(spiked)])
    await w3.provider.make_request("evm_mine", [])
    await quoter.quote_all(sink)
    (again,) = sent[2:]
    assert again.source == TRADING_CHAIN and again.cost > 2 * wallet.cost
    assert quoter.quoted == {SOURCE_CHAIN: across.cost, TRADING_CHAIN: again.cost}

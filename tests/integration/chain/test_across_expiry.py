"""A bridge fill delayed past its deadline (issue 11), on two anvils with the service, the
exchange simulator and our relayer: the Across deposit expires unfilled on 8453's clock, is
refunded to the issuer on 42161 by a one-leaf refund bundle, and the hop deposits again under a
new deposit id; the relayer fills that one (and is repaid on 42161) and the collateral reaches
the exchange exactly once. The expiry happens while the service is stopped: the restarted
service refunds it; a hop that gives up after its refund and is resumed refunds nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.app.chain_wiring import ChainPathSettings
from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic, expired_refund_leaf
from indexmaker.chain.bridge import AcrossBridge, route_between
from indexmaker.chain.connector import ChainSettings, Web3ChainPort
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.chain.hops import gas_cost_usdc
from indexmaker.chain.relayer import relayer_between
from indexmaker.chain.root_bundles import RootBundles
from indexmaker.chain.tx import TxSender
from indexmaker.core.chain_events import HopCompleted, HopStatusUnknown, RouteCollateral
from indexmaker.core.ids import TransferId, client_key
from indexmaker.engine.engine import SOURCE_CHAIN, TRADING_CHAIN

from . import path_harness as h

USDC = 10**6


class Pools:
    """Blocking reads of both spoke pools' logs (call from a worker thread)."""

    def __init__(self, chains: h.LocalChains) -> None:
        self.chains = chains

    def logs(self, chain_id: int, event: str) -> list[Any]:
        section = self.chains.sections[chain_id]
        w3 = Web3(Web3.HTTPProvider(self.chains.url(chain_id)))
        abi = artifacts.across(section["spoke_pool_contract"])["abi"]
        pool = w3.eth.contract(address=section["spoke_pool"], abi=abi)
        topic = event_topic(abi, event)
        raw = w3.eth.get_logs(
            {"address": pool.address, "fromBlock": 0, "toBlock": "latest", "topics": [topic]}
        )
        return [dict(getattr(pool.events, event)().process_log(g)["args"]) for g in raw]

    def deposit_ids(self) -> list[int]:
        return [int(a["depositId"]) for a in self.logs(SOURCE_CHAIN_ID, "FundsDeposited")]

    def deposit_receipt(self, deposit_id: int) -> Any:
        """The receipt of the transaction that made deposit `deposit_id` on 42161."""
        section = self.chains.sections[SOURCE_CHAIN_ID]
        w3 = Web3(Web3.HTTPProvider(self.chains.url(SOURCE_CHAIN_ID)))
        abi = artifacts.across(section["spoke_pool_contract"])["abi"]
        (log,) = w3.eth.get_logs(
            {
                "address": section["spoke_pool"],
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [
                    event_topic(abi, "FundsDeposited"),
                    None,
                    deposit_id.to_bytes(32, "big"),
                ],
            }
        )
        return w3.eth.get_transaction_receipt(log["transactionHash"])

    def releases(self, chain_id: int, key: str | None = None) -> list[Any]:
        """The receipts of custody's releases on `chain_id` (its CollateralReleased logs), of
        release id keccak(`key`) only when given."""
        w3 = Web3(Web3.HTTPProvider(self.chains.url(chain_id)))
        topics: list[Any] = [event_topic(artifacts.ours("Custody")["abi"], "CollateralReleased")]
        topics += [] if key is None else [Web3.keccak(text=key)]
        custody = self.chains.sections[chain_id]["custody"]
        logs = w3.eth.get_logs(
            {"address": custody, "fromBlock": 0, "toBlock": "latest", "topics": topics}
        )
        return [w3.eth.get_transaction_receipt(g["transactionHash"]) for g in logs]

    def usdc(self, chain_id: int, holder: str) -> int:
        section = self.chains.sections[chain_id]
        w3 = Web3(Web3.HTTPProvider(self.chains.url(chain_id)))
        usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        return int(usdc.functions.balanceOf(Web3.to_checksum_address(holder)).call())

    def pass_deadline(self, chain_id: int, seconds: int, mine: bool = True) -> None:
        """Move `chain_id`'s clock `seconds` ahead (with `mine`, a block mined at that time;
        else the chain stays idle, its head keeping its old time)."""
        w3 = Web3(Web3.HTTPProvider(self.chains.url(chain_id)))
        w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        if mine:
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def issuer_refunds(pools: Pools, issuer: str) -> list[list[int]]:
    """The amounts of every refund leaf executed to the issuer on 42161 (relayers' are not)."""
    executed = pools.logs(SOURCE_CHAIN_ID, "ExecutedRelayerRefundRoot")
    return [list(e["refundAmounts"]) for e in executed if e["refundAddresses"] == [issuer]]


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


@pytest.mark.slow
async def test_an_expired_deposit_is_refunded_after_a_restart_and_crossed_once(
    chains: h.LocalChains, running: Callable[..., h.Running], tmp_path: Path
) -> None:
    client = Account.from_key(h.CLIENT_KEYS[0])
    pools, issuer = Pools(chains), chains.issuer.address
    issuer_before = await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer)
    first = running(tmp_path)
    await first.start(relayer=False)  # nobody fills the deposit in time
    await h.client_deposit(chains, SOURCE_CHAIN_ID, client, 500)
    await h.until(lambda: len(pools.deposit_ids()) == 1, "the bridge deposit", 60)
    await first.stop()
    # While the service is down, 8453's clock passes the deposit's fill deadline (1 h).
    await _in_thread(pools.pass_deadline, TRADING_CHAIN_ID, 3601)

    second = running(tmp_path)
    await second.start(relayer=True)
    bridge, relayer = second.path.bridges["across"], second.path.relayer.relayers[0]
    assert second.service is not None
    ledger = second.service.engine.collateral.ledger(client_key(SOURCE_CHAIN_ID, client.address))
    await h.until(lambda: bool(ledger.lots) and ledger.lots[0].ready, "collateral at the exchange")
    (first_id, second_id) = await _in_thread(pools.deposit_ids)
    assert first_id != second_id
    # The first deposit expired unfilled and was refunded once; the second was filled once,
    # by our relayer, who was repaid the input on 42161.
    (refund,) = bridge.refunded
    assert not refund.repeated and len(refund.receipts) == 2  # bundle posted, leaf executed
    (executed,) = [
        e
        for e in await _in_thread(pools.logs, SOURCE_CHAIN_ID, "ExecutedRelayerRefundRoot")
        if e["refundAddresses"] == [issuer]
    ]
    assert executed["refundAmounts"] == [500 * USDC]
    fills = await _in_thread(pools.logs, TRADING_CHAIN_ID, "FilledRelay")
    assert [int(f["depositId"]) for f in fills] == [second_id]
    assert relayer.expired == [first_id] and relayer.filled == [second_id]
    await h.until(lambda: relayer.repaid == [second_id], "the relayer repaid", 60)
    # Nothing stuck or left over: the refund was deposited again, custody paid out once.
    assert await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer) == issuer_before
    pool = chains.sections[SOURCE_CHAIN_ID]["spoke_pool"]
    assert await _in_thread(pools.usdc, SOURCE_CHAIN_ID, pool) == 0  # refunded, relayer repaid
    # The exchange credited one deposit, of what the crossing delivered.
    rows = await second.path.chain.wallet.rest.signed(
        "GET", "/sapi/v1/capital/deposit/hisrec", {"coin": "USDC"}, weight=1
    )
    (credited,) = rows
    lot = ledger.lots[0]
    assert lot.hops == ["across", "wallet"]
    # The crossing's fee: the bridge's 0.10 and the gas of every transaction of the hop, the
    # first run's release and deposit and the refund bundle's included, at the ETHUSDC mid the
    # hop was charged at (cached 60 s).
    deposits = [await _in_thread(pools.deposit_receipt, i) for i in (first_id, second_id)]
    (release,) = await _in_thread(pools.releases, SOURCE_CHAIN_ID)
    receipts = [*refund.receipts, release, *deposits]
    gas = gas_cost_usdc(receipts, await bridge.price.eth_usdc())
    assert Decimal(500) - Decimal(credited["amount"]) == Decimal("0.10") + gas
    assert gas_cost_usdc(refund.receipts, await bridge.price.eth_usdc()) > 0


async def test_on_default_timings_a_never_filled_deposit_is_refunded_and_sent_again(
    chains: h.LocalChains, running: Callable[..., h.Running], tmp_path: Path
) -> None:
    """The defaults' relations (hop timeout 120 s, fill deadline 3,600 s, the router's 3
    tries, 3 deposits a run), scaled by 1/30: three hop timeouts pass while the deposit waits
    unfilled and nothing is given up; once 8453's clock passes its deadline the deposit is
    refunded and made again, and the new one crosses, once."""
    defaults = ChainPathSettings()
    scale = 30
    settings = replace(
        h.FAST,
        hop_timeout_s=defaults.hop_timeout_s / scale,
        fill_deadline_s=defaults.fill_deadline_s // scale,
    )
    client = Account.from_key(h.CLIENT_KEYS[1])
    pools, issuer = Pools(chains), chains.issuer.address
    pool = chains.sections[SOURCE_CHAIN_ID]["spoke_pool"]
    issuer_before = await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer)
    pool_before = await _in_thread(pools.usdc, SOURCE_CHAIN_ID, pool)
    refunds_before = await _in_thread(issuer_refunds, pools, issuer)
    deposits_before = await _in_thread(pools.deposit_ids)
    service = running(tmp_path, settings)
    await service.start(relayer=False)  # nobody fills the first deposit
    assert service.service is not None
    engine = service.service.engine
    ledger = engine.collateral.ledger(client_key(SOURCE_CHAIN_ID, client.address))
    await h.client_deposit(chains, SOURCE_CHAIN_ID, client, 300)
    await h.until(lambda: len(pools.deposit_ids()) == len(deposits_before) + 1, "the deposit", 60)
    # The scenario's time: three hop timeouts pass (the router's tries once gave up here,
    # long before the deadline, so the deposit was never refunded).
    await asyncio.sleep(3.5 * settings.hop_timeout_s)
    assert engine.router.in_flight() == 1 and engine.router.given_up() == []
    assert len(await _in_thread(pools.deposit_ids)) == len(deposits_before) + 1
    (lot,) = ledger.lots
    assert not lot.ready and lot.held == ""
    # 8453's clock passes the deadline: refunded, deposited again, filled by our relayer.
    await _in_thread(pools.pass_deadline, TRADING_CHAIN_ID, settings.fill_deadline_s + 1)
    service.path.relayer.start()
    await h.until(lambda: lot.ready, "collateral at the exchange")
    bridge, relayer = service.path.bridges["across"], service.path.relayer.relayers[0]
    first_id, second_id = (await _in_thread(pools.deposit_ids))[len(deposits_before) :]
    # (This module's earlier deposits are routed again by this fresh journal: found done,
    # their refunds found paid.)
    assert len([r for r in bridge.refunded if not r.repeated]) == 1
    refunds = await _in_thread(issuer_refunds, pools, issuer)
    assert refunds == [*refunds_before, [300 * USDC]]  # the deposit refunded once
    fills = await _in_thread(pools.logs, TRADING_CHAIN_ID, "FilledRelay")
    assert [int(f["depositId"]) for f in fills].count(second_id) == 1
    assert first_id not in [int(f["depositId"]) for f in fills]
    await h.until(lambda: second_id in relayer.repaid, "the relayer repaid", 60)
    # Nothing lost, nothing twice: the issuer holds what it held, the pool what it held
    # (refund paid, relayer repaid), the lot crossed once at the bridge fee and gas.
    assert await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer) == issuer_before
    assert await _in_thread(pools.usdc, SOURCE_CHAIN_ID, pool) == pool_before
    assert lot.hops == ["across", "wallet"] and lot.gross == 300
    assert Decimal("0.10") < lot.fee < Decimal(5)  # bridge fee and gas (refund included)
    assert engine.router.given_up() == []


def _source_port(chains: h.LocalChains) -> tuple[Web3ChainPort, AsyncWeb3[Any]]:
    """The issuer's port on 42161 (custody, its account) and a client of 8453."""
    src = chains.sections[SOURCE_CHAIN_ID]
    settings = ChainSettings(
        chain_id=SOURCE_CHAIN_ID,
        rpc_url=chains.url(SOURCE_CHAIN_ID),
        custody=src["custody"],
        usdc=src["usdc"],
        designation=SOURCE_CHAIN,
        poll_s=0.05,
    )
    dest_w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(chains.url(TRADING_CHAIN_ID)))
    return Web3ChainPort(settings, chains.issuer), dest_w3


def _hop(owner: str, amount: Decimal, key: str) -> RouteCollateral:
    """The across hop T1 of `amount` for client `owner` of 42161, keyed `key`."""
    client = client_key(SOURCE_CHAIN_ID, owner)
    return RouteCollateral(
        TransferId("T1"), client, "across", SOURCE_CHAIN, TRADING_CHAIN, amount, hop_key=key
    )


async def test_a_hop_given_up_after_its_refund_resumes_without_a_second_refund(
    chains: h.LocalChains,
) -> None:
    pools, issuer = Pools(chains), chains.issuer.address
    src = chains.sections[SOURCE_CHAIN_ID]
    await _in_thread(chains.mint_usdc, SOURCE_CHAIN_ID, src["custody"], Decimal(100))
    port, dest_w3 = _source_port(chains)
    ids = (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)
    route = route_between(chains.sections, *ids, poll_s=0.05, timeout_s=60.0, max_deposits=1)
    events: list[Any] = []

    async def sink(event: Any) -> None:
        events.append(event)

    hop = _hop(issuer, Decimal(100), "expiry-test#1:across")
    refunds_before = len(await _in_thread(pools.logs, SOURCE_CHAIN_ID, "ExecutedRelayerRefundRoot"))
    deposits_before = len(await _in_thread(pools.deposit_ids))
    issuer_before = await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer)
    first = AcrossBridge(port, dest_w3, route)
    await first.start(sink)
    await first.relay(hop)
    await h.until(lambda: len(pools.deposit_ids()) == deposits_before + 1, "the deposit", 60)
    # No block is mined on 8453 after its clock passes the deadline: the expiry is seen all
    # the same (the time a fill would be checked at, not the idle head's).
    await _in_thread(pools.pass_deadline, TRADING_CHAIN_ID, 3601, False)
    await h.until(lambda: bool(events), "the hop's report", 60)
    (gave_up,) = events
    assert isinstance(gave_up, HopStatusUnknown) and "expired" in gave_up.reason
    assert [p.repeated for p in first.refunded] == [False]
    # The refund waits in the issuer's account on 42161 (released from custody, refunded).
    assert await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer) == issuer_before + 100 * USDC
    await first.stop()

    # Resumed (the router's resend, or recovery after a restart) by a bridge that may deposit
    # again: the refund is found paid, nothing is sent for it; the redeposit is filled.
    second = AcrossBridge(port, dest_w3, replace(route, max_deposits=2))
    start_block = await port.w3.eth.block_number
    sender = TxSender(dest_w3, chains.relayer)
    w3s = {SOURCE_CHAIN_ID: port.w3, TRADING_CHAIN_ID: dest_w3}
    options = {"start_block": start_block, "poll_s": 0.05}
    relayer = relayer_between(w3s, chains.sections, *ids, sender, **options)
    stop = asyncio.Event()
    relaying = asyncio.create_task(relayer.run(stop))
    try:
        await second.start(sink)
        await second.relay(hop)
        await h.until(lambda: len(events) == 2, "the hop's completion", 60)
        # The bridge may see the fill's log before the relayer's own receipt wait returns.
        await h.until(lambda: bool(relayer.filled), "the relayer's fill", 30)
    finally:
        stop.set()
        await asyncio.wait_for(relaying, 30)
        await second.stop()
    assert isinstance(events[1], HopCompleted) and relayer.filled
    (again,) = second.refunded
    assert again.repeated and again.receipts == []
    # Charged every transaction of the hop, the first bridge's included (release, deposit,
    # refund bundle: found on chain by their events), at the route's fixed ETH price.
    (release,) = await _in_thread(pools.releases, SOURCE_CHAIN_ID, "transfer:" + hop.hop_key)
    ids = (await first.deposit_id(hop.hop_key), await second.deposit_id(hop.hop_key, 1))
    deposits = [await _in_thread(pools.deposit_receipt, i) for i in ids]
    gas = gas_cost_usdc([release, *deposits, *first.refunded[0].receipts], route.eth_usdc)
    assert events[1].fee == Decimal("0.10") + gas
    assert events[1].amount_received == Decimal(100) - events[1].fee
    assert again.bundle_id == first.refunded[0].bundle_id
    executed = await _in_thread(pools.logs, SOURCE_CHAIN_ID, "ExecutedRelayerRefundRoot")
    assert len(executed) == refunds_before + 1  # refunded once
    assert len(await _in_thread(pools.deposit_ids)) == deposits_before + 2
    assert await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer) == issuer_before


async def test_on_chains_without_our_admin_relay_the_hop_waits_for_acrosss_refund(
    chains: h.LocalChains,
) -> None:
    """External chains: no refund bundle of ours can be posted (NoAdminRelay), so the hop
    waits for Across's dataworker to refund the expired deposit, then deposits it again. The
    test plays the dataworker (a refund leaf executed on the pool by its admin)."""
    pools, issuer = Pools(chains), chains.issuer.address
    src = chains.sections[SOURCE_CHAIN_ID]
    await _in_thread(chains.mint_usdc, SOURCE_CHAIN_ID, src["custody"], Decimal(40))
    port, dest_w3 = _source_port(chains)
    ids = (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)
    figures = {"poll_s": 0.05, "timeout_s": 60.0, "refund_poll_s": 0.05, "refund_wait_s": 60.0}
    route = route_between(chains.sections, *ids, max_deposits=2, **figures)
    pool = (port.w3, SOURCE_CHAIN_ID, src["spoke_pool"], src["spoke_pool_contract"])
    not_ours = RootBundles(*pool, "0x000000000000000000000000000000000000dEaD", port.send)
    dataworker = RootBundles(*pool, issuer, port.send)  # the pool's admin: Across's stand-in
    events: list[Any] = []

    async def sink(event: Any) -> None:
        events.append(event)

    issuer_before = await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer)
    refunds_before = await _in_thread(issuer_refunds, pools, issuer)
    deposits_before = len(await _in_thread(pools.deposit_ids))
    bridge = AcrossBridge(port, dest_w3, route, refunds=not_ours)
    await bridge.start(sink)
    relayer = relayer_between(
        {SOURCE_CHAIN_ID: port.w3, TRADING_CHAIN_ID: dest_w3},
        chains.sections,
        *ids,
        TxSender(dest_w3, chains.relayer),
        start_block=await port.w3.eth.block_number,
        poll_s=0.05,
    )
    stop = asyncio.Event()
    try:
        await bridge.relay(_hop(issuer, Decimal(40), "external-refund#1:across"))
        await h.until(lambda: len(pools.deposit_ids()) == deposits_before + 1, "the deposit", 60)
        await _in_thread(pools.pass_deadline, TRADING_CHAIN_ID, 3601)
        await h.until(lambda: bool(bridge.dataworker.waiting), "waiting for Across's refund", 60)
        assert events == [] and await _in_thread(issuer_refunds, pools, issuer) == refunds_before
        first_id = (await _in_thread(pools.deposit_ids))[-1]
        (deposit,) = [
            d
            for d in await _in_thread(pools.logs, SOURCE_CHAIN_ID, "FundsDeposited")
            if int(d["depositId"]) == first_id
        ]
        await dataworker.pay(expired_refund_leaf(deposit, SOURCE_CHAIN_ID), 0)
        relaying = asyncio.create_task(relayer.run(stop))  # fills the deposit made again
        await h.until(lambda: bool(events), "the hop's completion", 60)
    finally:
        stop.set()
        await bridge.stop()
    await asyncio.wait_for(relaying, 30)
    (done,) = events
    assert isinstance(done, HopCompleted) and relayer.filled
    (seen,) = bridge.refunded
    assert seen.receipts == [] and not seen.repeated  # the dataworker's, none of ours
    assert await _in_thread(issuer_refunds, pools, issuer) == [*refunds_before, [40 * USDC]]
    assert len(await _in_thread(pools.deposit_ids)) == deposits_before + 2
    assert await _in_thread(pools.usdc, SOURCE_CHAIN_ID, issuer) == issuer_before

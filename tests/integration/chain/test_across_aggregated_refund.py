"""Two expired Across deposits refunded by ONE dataworker leaf (issue 11, external mode): Across's
dataworker sums what a bundle owes one depositor, so the leaf pays the issuer 40 + 25 USDC in
one entry. Both hops take it (matched by the exact sum), deposit again and complete; the match
is kept in the store, so a restart between the refund and the fills finds it at once and
counts the refund once. On two anvils with our relayer; the test plays the dataworker (a
refund leaf executed on the pool by its admin)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from indexmaker.app.config import StoreConfig
from indexmaker.chain.across import refund_leaf
from indexmaker.chain.bridge import AcrossBridge, route_between
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.chain.relayer import relayer_between
from indexmaker.chain.root_bundles import RootBundles
from indexmaker.chain.tx import TxSender
from indexmaker.core.chain_events import HopCompleted, RouteCollateral
from indexmaker.core.ids import TransferId, client_key
from indexmaker.store.across_refunds import SqlAcrossRefunds, open_across_refunds

from . import path_harness as h
from . import test_across_expiry as expiry

USDC = 10**6
AMOUNTS = (Decimal(40), Decimal(25))
FIGURES = {"poll_s": 0.05, "timeout_s": 60.0, "refund_poll_s": 0.05, "refund_wait_s": 60.0}


class Rig:
    """The issuer's 42161 port, a bridge that cannot post refund bundles (external chains),
    the dataworker's stand-in, the hops' events."""

    def __init__(self, chains: h.LocalChains, tag: str) -> None:
        self.chains, self.pools = chains, expiry.Pools(chains)
        self.issuer = chains.issuer.address
        self.port, self.dest_w3 = expiry._source_port(chains)
        src = chains.sections[SOURCE_CHAIN_ID]
        pool = (self.port.w3, SOURCE_CHAIN_ID, src["spoke_pool"], src["spoke_pool_contract"])
        self.not_ours = RootBundles(
            *pool, "0x000000000000000000000000000000000000dEaD", self.port.send
        )
        self.dataworker = RootBundles(*pool, self.issuer, self.port.send)  # the pool's admin
        self.route = route_between(
            chains.sections, SOURCE_CHAIN_ID, TRADING_CHAIN_ID, max_deposits=2, **FIGURES
        )
        self.hops = [
            RouteCollateral(
                TransferId(f"T{n}"),
                client_key(SOURCE_CHAIN_ID, self.issuer),
                "across",
                expiry.SOURCE_CHAIN,
                expiry.TRADING_CHAIN,
                amount,
                hop_key=f"{tag}#{n}:across",
            )
            for n, amount in enumerate(AMOUNTS, start=1)
        ]
        self.events: list[Any] = []

    async def sink(self, event: Any) -> None:
        self.events.append(event)

    async def bridge(self, ledger: SqlAcrossRefunds) -> AcrossBridge:
        """A bridge (a service's, new after a restart) keeping matches in `ledger`, running
        both hops."""
        bridge = AcrossBridge(self.port, self.dest_w3, self.route, refunds=self.not_ours)
        bridge.dataworker.keep_in(ledger)
        await bridge.start(self.sink)
        for hop in self.hops:
            await bridge.relay(hop)
        return bridge

    def relayer(self, start_block: int) -> Any:
        w3s = {SOURCE_CHAIN_ID: self.port.w3, TRADING_CHAIN_ID: self.dest_w3}
        sender = TxSender(self.dest_w3, self.chains.relayer)
        ids = (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)
        return relayer_between(
            w3s, self.chains.sections, *ids, sender, start_block=start_block, poll_s=0.05
        )

    async def expire_both(self, bridge: AcrossBridge, deposits_before: int) -> list[Any]:
        """Wait for both deposits, expire them on 8453's clock, wait until both hops wait
        for Across's refund; the two deposits' args."""
        await h.until(
            lambda: len(self.pools.deposit_ids()) == deposits_before + 2, "both deposits", 60
        )
        await expiry._in_thread(self.pools.pass_deadline, TRADING_CHAIN_ID, 3601)
        await h.until(lambda: len(bridge.dataworker.waiting) == 2, "both hops waiting", 60)
        ids = (await expiry._in_thread(self.pools.deposit_ids))[-2:]
        logs = await expiry._in_thread(self.pools.logs, SOURCE_CHAIN_ID, "FundsDeposited")
        return [d for d in logs if int(d["depositId"]) in ids]

    async def pay_one_leaf(self, leaf_id: int) -> None:
        """The dataworker's one entry for the issuer: the sum of both expired deposits (a
        leaf id of its own per test: the same leaf twice would be one refund)."""
        usdc = self.chains.sections[SOURCE_CHAIN_ID]["usdc"]
        total = int(sum(AMOUNTS)) * USDC
        leaf = refund_leaf(SOURCE_CHAIN_ID, usdc, [(self.issuer, total)], leaf_id)
        await self.dataworker.pay(leaf, 0)  # its look-ups from block 0: the test's chains


async def _funded(chains: h.LocalChains) -> None:
    src = chains.sections[SOURCE_CHAIN_ID]
    await expiry._in_thread(chains.mint_usdc, SOURCE_CHAIN_ID, src["custody"], sum(AMOUNTS))


async def _completed(rig: Rig, relayer: Any) -> list[HopCompleted]:
    stop = asyncio.Event()
    relaying = asyncio.create_task(relayer.run(stop))
    try:
        await h.until(lambda: len(rig.events) == 2, "both hops' completions", 60)
    finally:
        stop.set()
    await asyncio.wait_for(relaying, 30)
    assert all(isinstance(e, HopCompleted) for e in rig.events)
    return rig.events


async def test_one_leaf_refunding_two_expired_deposits_completes_both_hops(
    chains: h.LocalChains, tmp_path: Path
) -> None:
    await _funded(chains)
    rig = Rig(chains, "aggregated")
    ledger = open_across_refunds(StoreConfig(data_dir=tmp_path))
    assert ledger is not None
    issuer_before = await expiry._in_thread(rig.pools.usdc, SOURCE_CHAIN_ID, rig.issuer)
    refunds_before = await expiry._in_thread(expiry.issuer_refunds, rig.pools, rig.issuer)
    deposits_before = len(await expiry._in_thread(rig.pools.deposit_ids))
    relayer = rig.relayer(await rig.port.w3.eth.block_number)
    bridge = await rig.bridge(ledger)
    try:
        first, second = await rig.expire_both(bridge, deposits_before)
        await rig.pay_one_leaf(7701)
        (done_a, done_b) = await _completed(rig, relayer)
    finally:
        await bridge.stop()
    assert {e.transfer_id for e in (done_a, done_b)} == {"T1", "T2"}
    # One refund of both, matched to both deposits; each hop deposited again once.
    a, b = (ledger.matched(SOURCE_CHAIN_ID, int(d["depositId"])) for d in (first, second))
    assert (
        a is not None
        and a == b
        and set(a.deposit_ids)
        == {
            int(first["depositId"]),
            int(second["depositId"]),
        }
    )
    assert [p.repeated for p in bridge.refunded] == [False, False]
    assert await expiry._in_thread(expiry.issuer_refunds, rig.pools, rig.issuer) == [
        *refunds_before,
        [65 * USDC],
    ]
    assert len(await expiry._in_thread(rig.pools.deposit_ids)) == deposits_before + 4
    assert await expiry._in_thread(rig.pools.usdc, SOURCE_CHAIN_ID, rig.issuer) == issuer_before
    ledger.close()


async def test_a_restart_after_the_aggregated_refund_finds_its_match_and_counts_it_once(
    chains: h.LocalChains, tmp_path: Path
) -> None:
    await _funded(chains)
    rig = Rig(chains, "aggregated-restart")
    config = StoreConfig(data_dir=tmp_path)
    ledger = open_across_refunds(config)
    assert ledger is not None
    refunds_before = await expiry._in_thread(expiry.issuer_refunds, rig.pools, rig.issuer)
    deposits_before = len(await expiry._in_thread(rig.pools.deposit_ids))
    relayer = rig.relayer(await rig.port.w3.eth.block_number)
    bridge = await rig.bridge(ledger)
    try:
        await rig.expire_both(bridge, deposits_before)
        await rig.pay_one_leaf(7702)
        # Both matched and deposited again; no relayer yet: the new deposits wait unfilled.
        await h.until(
            lambda: len(rig.pools.deposit_ids()) == deposits_before + 4, "both redeposits", 60
        )
    finally:
        await bridge.stop()  # the service stops (crash) before the fills
        ledger.close()
    assert rig.events == []
    # The restarted service's bridge carries both hops on (recovery's redo, same keys).
    reopened = open_across_refunds(config)
    assert reopened is not None
    again = await rig.bridge(reopened)
    try:
        await _completed(rig, relayer)
    finally:
        await again.stop()
        reopened.close()
    # The match came from the store at once (no second look-up), the leaf counted once.
    assert [p.repeated for p in again.refunded] == [True, True]
    assert again.dataworker.waiting == set()
    assert await expiry._in_thread(expiry.issuer_refunds, rig.pools, rig.issuer) == [
        *refunds_before,
        [65 * USDC],
    ]
    assert len(await expiry._in_thread(rig.pools.deposit_ids)) == deposits_before + 4

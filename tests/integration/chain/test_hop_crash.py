"""A hop interrupted by a crash is charged exactly what an uninterrupted one is (issue 11/10):
on two anvils, the Across hop (custody release → pool deposit → fill) and the wallet hop
(release to the exchange's deposit address → credit) are stopped at each place between their
steps (the process "dies": the hop's task freezes right after a transaction is mined and is
cancelled, its memory dropped), then resumed under the same key by new ports and bridges (a
restarted service). The lot's fee (bridge fee + the gas of every transaction of the hop, in
USDC at a fixed ETH price) and what arrives are those of the hop's transactions found on
chain by their events, to the micro-USDC, and nothing moves twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.app.binance_wiring import binance_venue
from indexmaker.app.chain_wiring import exchange_sim_args, exchange_sim_env
from indexmaker.app.config import StoreConfig
from indexmaker.chain.bridge import AcrossBridge, route_between
from indexmaker.chain.connector import ChainSettings, Web3ChainPort
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.chain.exchange_wallet import ExchangeWallet
from indexmaker.chain.hops import gas_cost_usdc
from indexmaker.chain.relayer import relayer_between
from indexmaker.chain.routing import RoutedChainPort
from indexmaker.chain.tx import TxSender
from indexmaker.core.chain_events import HopCompleted, RouteCollateral
from indexmaker.core.ids import Designation, TransferId, client_key
from indexmaker.core.money import exact_add, exact_sub
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, SOURCE_CHAIN, TRADING_CHAIN
from indexmaker.store.chain_txs import PendingTx, SqlChainTxs, open_chain_txs

from . import path_harness as h
from .test_across_expiry import Pools

ETH_USDC = Decimal(3000)  # the bridges' and ports' fixed price: both runs charge gas alike
BRIDGE_FEE = Decimal("0.10")
DESIGNATIONS = {SOURCE_CHAIN_ID: SOURCE_CHAIN, TRADING_CHAIN_ID: TRADING_CHAIN}


async def _thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


class Killed(BaseException):
    """The process dies here (not an Exception: nothing in the hop handles it)."""


class Events:
    def __init__(self) -> None:
        self.done: list[HopCompleted] = []

    async def __call__(self, event: Any) -> None:
        if isinstance(event, HopCompleted):
            self.done.append(event)


def _port(chains: h.LocalChains, chain_id: int) -> Web3ChainPort:
    """A new port (as a restarted service makes): nothing of an earlier run in memory."""
    section = chains.sections[chain_id]
    settings = ChainSettings(
        chain_id=chain_id,
        rpc_url=chains.url(chain_id),
        custody=section["custody"],
        usdc=section["usdc"],
        designation=DESIGNATIONS[chain_id],
        poll_s=0.05,
    )
    return Web3ChainPort(settings, chains.issuer)


def die_after(port: Web3ChainPort, count: int) -> asyncio.Event:
    """The process dies right after the port's `count`-th transaction is mined: that send
    never returns (the hop freezes there until cancelled). The event is set at that moment."""
    died, real, sent = asyncio.Event(), port.send, [0]

    async def send(to: str, call: Any, **step: str) -> Any:
        receipt = await real(to, call, **step)
        sent[0] += 1
        if sent[0] == count:
            died.set()
            await asyncio.Event().wait()  # never: killed here
        return receipt

    port.send = send  # type: ignore[method-assign]
    return died


def released_receipt(chains: h.LocalChains, chain_id: int, key: str) -> Any:
    """The receipt of custody's one release under `transfer:<key>` (its CollateralReleased)."""
    (receipt,) = Pools(chains).releases(chain_id, f"transfer:{key}")  # released once
    return receipt


def _hop(
    key: str,
    tid: str,
    bridge: str,
    source: Designation,
    dest: Designation,
    amount: int | Decimal,
    from_block: int = 0,
) -> Any:
    return RouteCollateral(
        TransferId(tid), client_key(SOURCE_CHAIN_ID, "0x" + "11" * 20), bridge, source, dest,
        Decimal(amount), hop_key=key, from_block=from_block,
    )  # fmt: skip


class Across:
    """The Across hop's runs: a bridge on new ports each run, our relayer when asked."""

    def __init__(self, chains: h.LocalChains) -> None:
        self.chains, self.pools = chains, Pools(chains)
        self.route = route_between(
            chains.sections, SOURCE_CHAIN_ID, TRADING_CHAIN_ID, poll_s=0.05, timeout_s=60.0,
            eth_usdc=ETH_USDC, fee=BRIDGE_FEE,
        )  # fmt: skip

    def bridge(self, journal: SqlChainTxs | None = None) -> tuple[AcrossBridge, Web3ChainPort]:
        port = _port(self.chains, SOURCE_CHAIN_ID)
        if journal is not None:
            port.make_durable(journal, None, None)
        dest_w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(self.chains.url(TRADING_CHAIN_ID)))
        return AcrossBridge(port, dest_w3, self.route), port

    async def relaying(self) -> tuple[asyncio.Event, asyncio.Task[None]]:
        ids = (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)
        w3s: dict[int, AsyncWeb3[Any]] = {
            i: AsyncWeb3(AsyncHTTPProvider(self.chains.url(i))) for i in ids
        }
        sender = TxSender(w3s[TRADING_CHAIN_ID], self.chains.relayer)
        start = await w3s[SOURCE_CHAIN_ID].eth.block_number
        options = {"start_block": max(0, start - 50), "poll_s": 0.05, "delay_s": 0.0}
        relayer = relayer_between(w3s, self.chains.sections, *ids, sender, **options)
        stop = asyncio.Event()
        return stop, asyncio.create_task(relayer.run(stop))

    async def complete(
        self, hop: RouteCollateral, relay: bool = True, journal: StoreConfig | None = None
    ) -> HopCompleted:
        """Run `hop` on a new bridge to its end (our relayer filling when `relay`), its sends
        kept in the pending-transaction store of `journal` when given."""
        txs = None if journal is None else open_chain_txs(journal)
        bridge, _ = self.bridge(txs)
        events = Events()
        stop, task = await self.relaying() if relay else (asyncio.Event(), None)
        try:
            await bridge.start(events)
            await bridge.relay(hop)
            await h.until(lambda: bool(events.done), "the hop's completion", 60)
        finally:
            stop.set()
            if task is not None:
                await asyncio.wait_for(task, 5)
            await bridge.stop()
            if txs is not None:
                txs.close()
        (done,) = events.done
        return done

    async def expected(self, key: str, amount: int) -> tuple[Decimal, Decimal]:
        return await self.expected_exact(key, Decimal(amount))

    async def expected_exact(self, key: str, amount: Decimal) -> tuple[Decimal, Decimal]:
        """(received, fee) from the hop's transactions on chain: its one release and its one
        deposit (found by their events), at the fixed price."""
        release = await _thread(released_receipt, self.chains, SOURCE_CHAIN_ID, key)
        bridge, _ = self.bridge()
        deposit_id = await bridge.deposit_id(key)
        deposit = await _thread(self.pools.deposit_receipt, deposit_id)
        gas = gas_cost_usdc([release, deposit], ETH_USDC)
        assert gas > 0
        fee = exact_add(BRIDGE_FEE, gas)
        return exact_sub(amount, fee), fee


@pytest.fixture
async def across(chains: h.LocalChains) -> AsyncIterator[Across]:
    src = chains.sections[SOURCE_CHAIN_ID]
    await _thread(chains.mint_usdc, SOURCE_CHAIN_ID, src["custody"], Decimal(1_000))
    yield Across(chains)


async def test_an_uninterrupted_across_hop_is_charged_its_release_and_deposit(
    across: Across,
) -> None:
    hop = _hop("crash-0:across", "A0", "across", SOURCE_CHAIN, TRADING_CHAIN, 100)
    done = await across.complete(hop)
    assert (done.amount_received, done.fee) == await across.expected("crash-0:across", 100)


@pytest.mark.parametrize("place", ["after the release", "after the deposit", "after the fill"])
async def test_an_across_hop_killed_between_its_steps_is_charged_as_uninterrupted(
    across: Across, place: str
) -> None:
    key = f"crash-{place.split()[-1]}:across"
    hop = _hop(key, "A1", "across", SOURCE_CHAIN, TRADING_CHAIN, 120)
    first, port = across.bridge()
    events = Events()
    deposits_before = len(await _thread(across.pools.deposit_ids))
    if place == "after the release":
        died = die_after(port, 1)  # the release is the hop's first transaction
        await first.start(events)
        await first.relay(hop)
        await asyncio.wait_for(died.wait(), 30)
    elif place == "after the deposit":  # nobody fills: killed while waiting for the fill
        await first.start(events)
        await first.relay(hop)
        await h.until(
            lambda: len(across.pools.deposit_ids()) == deposits_before + 1, "the deposit", 30
        )
    else:  # filled and reported; the restart redoes it (recovery's resend)
        events.done.append(await across.complete(hop))
    await first.stop()  # the kill: whatever the hop held in memory is gone

    again = await across.complete(_hop(key, "A2", "across", SOURCE_CHAIN, TRADING_CHAIN, 120))
    expected = await across.expected(key, 120)  # asserts one release and one deposit
    assert (again.amount_received, again.fee) == expected
    assert len(await _thread(across.pools.deposit_ids)) == deposits_before + 1
    for earlier in events.done:
        assert (earlier.amount_received, earlier.fee) == expected


async def test_an_across_hop_resumed_many_log_chunks_later_finds_its_deposit_and_fill(
    across: Across,
) -> None:
    """Issue 11: killed after its deposit, filled while it was down, resumed after both chains
    made more blocks than a log search reads at once (20 here, 10,000 by default; 100,000
    blocks are 55 h of Base): the restarted bridge finds its deposit from the lot's deposit
    block and the fill from the destination's block at the deposit's quote time, chunk by
    chunk, so it deposits nothing again and is charged as an uninterrupted hop. A fixed window
    back from the head (the old look-back) no longer reaches the deposit."""
    chunk = 20
    across.route = replace(across.route, log_chunk_blocks=chunk)
    key, low = "lookup-far:across", await _thread(_head, across.chains, SOURCE_CHAIN_ID)
    hop = _hop(key, "A1", "across", SOURCE_CHAIN, TRADING_CHAIN, 110, from_block=low)
    deposits_before = len(await _thread(across.pools.deposit_ids))
    first, _ = across.bridge()
    await first.start(Events())
    await first.relay(hop)
    await h.until(lambda: len(across.pools.deposit_ids()) == deposits_before + 1, "deposit", 30)
    await first.stop()  # the kill, while waiting for the fill
    stop, relaying = await across.relaying()  # fills it while the hop is down
    deposit_id = await first.deposit_id(key)
    await h.until(lambda: _filled(across.pools, deposit_id), "the fill", 30)
    stop.set()
    await asyncio.wait_for(relaying, 5)
    for chain_id in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID):
        await _thread(_mine, across.chains, chain_id, 3 * chunk + 7)
    made = int((await _thread(across.pools.deposit_receipt, deposit_id))["blockNumber"])
    assert await _thread(_head, across.chains, SOURCE_CHAIN_ID) - made > 3 * chunk

    again = await across.complete(hop, relay=False)  # nobody fills again: found filled
    assert (again.amount_received, again.fee) == await across.expected(key, 110)
    assert len(await _thread(across.pools.deposit_ids)) == deposits_before + 1


def _filled(pools: Pools, deposit_id: int) -> bool:
    return deposit_id in {int(a["depositId"]) for a in pools.logs(TRADING_CHAIN_ID, "FilledRelay")}


def _head(chains: h.LocalChains, chain_id: int) -> int:
    return int(Web3(Web3.HTTPProvider(chains.url(chain_id))).eth.block_number)


def _mine(chains: h.LocalChains, chain_id: int, blocks: int) -> None:
    Web3(Web3.HTTPProvider(chains.url(chain_id))).provider.make_request("anvil_mine", [blocks])  # type: ignore[arg-type]


async def test_an_across_deposit_signed_but_never_sent_before_the_kill_is_made_once(
    across: Across, tmp_path: Path
) -> None:
    """Killed between writing the deposit to the pending-transaction store and broadcasting
    it: the restarted bridge finds no deposit on chain, but the release it tries first
    settles the pending one (tx.py `recover` rebroadcasts it); the hop then finds that
    deposit instead of making a second one (an `unsafeDeposit` of the same nonce would be
    accepted by the pool: a second crossing of the same collateral)."""
    key, store = "crash-unsent:across", StoreConfig(data_dir=tmp_path)
    hop = _hop(key, "A1", "across", SOURCE_CHAIN, TRADING_CHAIN, 130)
    first, port = across.bridge()
    txs = open_chain_txs(store)
    assert txs is not None
    port.make_durable(txs, None, None)
    died, record = asyncio.Event(), txs.record
    pool = Web3.to_checksum_address(across.route.origin_pool)

    def record_then_die(tx: PendingTx) -> None:
        record(tx)
        if Web3.to_checksum_address(tx.fields["to"]) == pool:
            died.set()
            raise Killed  # never broadcast

    txs.record = record_then_die  # type: ignore[method-assign]
    deposits_before = len(await _thread(across.pools.deposit_ids))
    await first.start(Events())
    await first.relay(hop)
    await asyncio.wait_for(died.wait(), 30)
    with pytest.raises(Killed):  # the hop's task died there
        await first.stop()
    txs.close()
    assert len(await _thread(across.pools.deposit_ids)) == deposits_before  # not sent

    again = await across.complete(hop, journal=store)
    assert (again.amount_received, again.fee) == await across.expected(key, 130)
    assert len(await _thread(across.pools.deposit_ids)) == deposits_before + 1


# ---------------------------------------------------------------- the wallet hop


@pytest.fixture
async def wallet(chains: h.LocalChains, pairs: list[str]) -> AsyncIterator[ExchangeWallet]:
    args = [*exchange_sim_args(chains), "--indexes", h.INDEX]
    venue, sim = binance_venue(pairs, args, exchange_sim_env(chains))
    try:
        yield ExchangeWallet(venue.rest, poll_s=0.05)
    finally:
        sim.stop()


def _routed(chains: h.LocalChains, wallet: ExchangeWallet) -> tuple[RoutedChainPort, Any]:
    port = _port(chains, TRADING_CHAIN_ID)
    routed = RoutedChainPort(
        {TRADING_CHAIN: port}, TRADING_CHAIN, EXCHANGE_ACCOUNT, wallet, eth_usdc=ETH_USDC,
        timeout_s=60.0,
    )  # fmt: skip
    return routed, port


async def _credited(wallet: ExchangeWallet, tx: str) -> list[Any]:
    rows = await wallet.rest.signed(
        "GET", "/sapi/v1/capital/deposit/hisrec", {"coin": "USDC", "txId": tx}, weight=1
    )
    return list(rows)


@pytest.mark.parametrize("killed", [False, True])
async def test_a_wallet_hop_killed_after_its_release_is_charged_as_uninterrupted(
    chains: h.LocalChains, wallet: ExchangeWallet, killed: bool
) -> None:
    dst = chains.sections[TRADING_CHAIN_ID]
    await _thread(chains.mint_usdc, TRADING_CHAIN_ID, dst["custody"], Decimal(100))
    key = f"crash-wallet-{killed}:wallet"
    hop = _hop(key, "W1", "wallet", TRADING_CHAIN, EXCHANGE_ACCOUNT, 90)
    if killed:
        first, port = _routed(chains, wallet)
        died = die_after(port, 1)
        await first.start(Events())
        await first.transfer(hop)
        await asyncio.wait_for(died.wait(), 30)
        await first.stop()
    routed, _ = _routed(chains, wallet)
    events = Events()
    await routed.start(events)
    try:
        await routed.transfer(_hop(key, "W2", "wallet", TRADING_CHAIN, EXCHANGE_ACCOUNT, 90))
        await h.until(lambda: bool(events.done), "the wallet hop's completion", 60)
    finally:
        await routed.stop()
    (done,) = events.done
    release = await _thread(released_receipt, chains, TRADING_CHAIN_ID, key)
    gas = gas_cost_usdc([release], ETH_USDC)
    assert gas > 0 and (done.amount_received, done.fee) == (Decimal(90) - gas, gas)
    (credit,) = await _credited(wallet, "0x" + bytes(release["transactionHash"]).hex())
    assert Decimal(credit["amount"]) == Decimal(90)  # the exchange credited the release once


# ---------------------------------------------------------------- exact under any context


async def test_hop_figures_are_exact_under_a_coarse_decimal_context(
    chains: h.LocalChains, across: Across, wallet: ExchangeWallet
) -> None:
    """A caller's 3-digit Decimal context (the hops' tasks inherit it) changes no figure: the
    Across hop of 150.123456 and the wallet hop of 10^14 + 0.123456 USDC (what arrives, less
    the gas to the micro-USDC; the context once turned a fee into "0E+37")."""
    dst = chains.sections[TRADING_CHAIN_ID]
    big = Decimal("100000000000000.123456")
    await _thread(chains.mint_usdc, TRADING_CHAIN_ID, dst["custody"], big)
    routed, _ = _routed(chains, wallet)
    events = Events()
    hop = _hop("exact:across", "X1", "across", SOURCE_CHAIN, TRADING_CHAIN, Decimal("150.123456"))
    wallet_hop = _hop("exact:wallet", "X2", "wallet", TRADING_CHAIN, EXCHANGE_ACCOUNT, big)
    with localcontext(Context(prec=3)):
        crossed = await across.complete(hop)
        await routed.start(events)
        try:
            await routed.transfer(wallet_hop)
            await h.until(lambda: bool(events.done), "the wallet hop's completion", 60)
        finally:
            await routed.stop()
    received, fee = await across.expected_exact("exact:across", hop.amount)
    assert (crossed.amount_received, crossed.fee) == (received, fee)
    (paid,) = events.done
    release = await _thread(released_receipt, chains, TRADING_CHAIN_ID, "exact:wallet")
    gas = gas_cost_usdc([release], ETH_USDC)
    assert (paid.amount_received, paid.fee) == (exact_sub(big, gas), gas)
    assert paid.amount_received == Decimal("100000000000000.123456") - gas  # 28 digits: exact

"""The real `indexmaker serve` killed with SIGKILL in the middle of a collateral hop (issue 11:
"a restart between bridge deposit and fill", "no transfer is made twice across a restart").

Each life of serve runs on the same state dir (SQLite, the two anvils and the exchange simulator
adopted after every kill: app/local_peers.py) and dies by its own SIGKILL at a chain step of
the next deposit's hop (`INDEXMAKER_CRASH_AT=chain:<step>#<n>`, store/crash.py), with nothing
of that hop reported to the engine: after the custody release on 42161 is mined, with the
Across deposit in the pending-transaction store but not broadcast, after the deposit is mined
but before our relayer fills it, after the fill before the wallet hop, and after the wallet
hop's release to the exchange's deposit address before the exchange credits it. The next life
restarts on the same state dir and carries the hop out. Read from the anvils (and the
exchange's deposit history), for every deposit, the calm one included: one custody release
per hop, one Across deposit, one fill, one release to the exchange, credited once; and the
lot's fee is the bridge fee plus the gas of exactly those transactions, as an uninterrupted
hop charges (the calm one is checked by the same rule; SYL2 lists no ETHUSDC, so gas is priced
at the fixed `eth_usdc`). A buy then mints once.

The default run kills at two places (the wallet hop, and between the Across deposit and its
fill); `INDEXMAKER_HOP_KILL_ALL=1` at all five (about a minute longer). Places are visited
latest step first: a restart's redo of the previous hop only passes steps after the one it
died at, so it never reaches the step the new life is to die at.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from web3 import Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic, from_bytes32, leaf_id, to_bytes32
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.chain.hops import gas_cost_usdc
from indexmaker.core.money import units_to_usdc, usdc_to_units
from indexmaker.engine.engine import SOURCE_CHAIN

from ..binance_sim.conftest import rest
from ..venues.test_serve_binance import alive
from .test_serve_kept_chains import CLIENT
from .test_serve_kill9 import Serve, peer_pids, peers

AMOUNT = Decimal(300)
BRIDGE_FEE = Decimal("0.10")
ETH_USDC = Decimal(3000)  # SYL2's pairs hold no ETHUSDC: the venue has no price, gas is at this
SETTINGS = f"""
indexes = ["SYL2"]
[chain]
bridge_fee = "{BRIDGE_FEE}"
eth_usdc = "{ETH_USDC}"
relayer_delay = 2  # the fill comes well after the deposit's receipt: a kill between them
"""
# Latest step first (module doc).
PLACES = (
    "wallet_released",
    "across_filled",
    "across_deposited",
    "across_deposit_recorded",
    "across_released",
)
DEFAULT = ("wallet_released", "across_deposited")


def places() -> tuple[str, ...]:
    return PLACES if os.environ.get("INDEXMAKER_HOP_KILL_ALL") == "1" else DEFAULT


class OnChain:
    """Blocking reads of both anvils at the addresses of serve's `deployment.json`."""

    def __init__(self, data_dir: Path) -> None:
        self.deployment = json.loads((data_dir / "anvil" / "deployment.json").read_text())
        self.issuer = Web3.to_checksum_address(self.deployment["deployer"])
        self.custody_abi = artifacts.ours("Custody")["abi"]

    def section(self, chain_id: int) -> dict[str, Any]:
        section: dict[str, Any] = self.deployment["chains"][str(chain_id)]
        return section

    def w3(self, chain_id: int) -> Web3:
        return Web3(Web3.HTTPProvider(self.section(chain_id)["rpc_url"]))

    def _logs(self, chain_id: int, contract: Any, event: str, *indexed: Any) -> list[Any]:
        topics = [event_topic(contract.abi, event), *indexed]
        raw = self.w3(chain_id).eth.get_logs(
            {"address": contract.address, "fromBlock": 0, "toBlock": "latest", "topics": topics}
        )
        return [getattr(contract.events, event)().process_log(g) for g in raw]

    def custody(self, chain_id: int) -> Any:
        address = self.section(chain_id)["custody"]
        return self.w3(chain_id).eth.contract(address=address, abi=self.custody_abi)

    def pool(self, chain_id: int) -> Any:
        section = self.section(chain_id)
        abi = artifacts.across(section["spoke_pool_contract"])["abi"]
        return self.w3(chain_id).eth.contract(address=section["spoke_pool"], abi=abi)

    def releases(self, chain_id: int, key: str | None = None) -> list[Any]:
        """Custody's CollateralReleased logs on `chain_id` (of release id keccak(`key`))."""
        keyed = [] if key is None else [Web3.keccak(text=key)]
        return self._logs(chain_id, self.custody(chain_id), "CollateralReleased", *keyed)

    def deposit_id(self, hop_key: str, attempt: int = 0) -> int:
        """The Across deposit id of a hop's `attempt`-th deposit: unsafeDeposit's nonce is
        keccak("across:<key>") (then "#<attempt>"), chain/bridge.py."""
        text = f"across:{hop_key}" if attempt == 0 else f"across:{hop_key}#{attempt}"
        nonce = int.from_bytes(Web3.keccak(text=text), "big")
        me = self.issuer
        call = self.pool(SOURCE_CHAIN_ID).functions.getUnsafeDepositId(me, to_bytes32(me), nonce)
        return int(call.call())

    def deposits(self, deposit_id: int | None = None) -> list[Any]:
        """FundsDeposited logs on 42161 (of `deposit_id`; its indexed values: destination
        chain, deposit id, depositor)."""
        indexed = [] if deposit_id is None else [None, deposit_id.to_bytes(32, "big")]
        return self._logs(SOURCE_CHAIN_ID, self.pool(SOURCE_CHAIN_ID), "FundsDeposited", *indexed)

    def fills(self, deposit_id: int) -> list[Any]:
        """FilledRelay logs on 8453 of 42161's `deposit_id`."""
        indexed = [SOURCE_CHAIN_ID.to_bytes(32, "big"), deposit_id.to_bytes(32, "big")]
        return self._logs(TRADING_CHAIN_ID, self.pool(TRADING_CHAIN_ID), "FilledRelay", *indexed)

    def repayments(self) -> list[Any]:
        """ExecutedRelayerRefundRoot logs on 42161: refund leaves paid by the pool."""
        pool = self.pool(SOURCE_CHAIN_ID)
        return self._logs(SOURCE_CHAIN_ID, pool, "ExecutedRelayerRefundRoot")

    def mints(self) -> list[Any]:
        return self._logs(TRADING_CHAIN_ID, self.custody(TRADING_CHAIN_ID), "IndexMinted")

    def receipt(self, chain_id: int, log: Any) -> Any:
        return self.w3(chain_id).eth.get_transaction_receipt(log["transactionHash"])

    def tokens(self, symbol: str, holder: str) -> int:
        address = self.section(TRADING_CHAIN_ID)["index_tokens"][symbol]
        abi = artifacts.ours("IndexToken")["abi"]
        token = self.w3(TRADING_CHAIN_ID).eth.contract(address=address, abi=abi)
        return int(token.functions.balanceOf(Web3.to_checksum_address(holder)).call())


def hop_keys(seq: int) -> tuple[str, str]:
    """The hop keys of CLIENT's `seq`-th deposit on 42161 (engine/collateral.py)."""
    return f"{SOURCE_CHAIN}#{seq}:across", f"{SOURCE_CHAIN}#{seq}:wallet"


def credits(data_dir: Path) -> list[dict[str, Any]]:
    """The exchange's USDC deposit history (the simulator's signed SAPI), its own record."""
    sim = SimpleNamespace(url=peers(data_dir)["exchange_sim"]["url"])
    status, _, body = rest(sim, "GET", "/sapi/v1/capital/deposit/hisrec", coin="USDC")  # type: ignore[arg-type]
    assert status == 200, body
    return list(body)


def check_place(place: str, chain: OnChain, seq: int, data_dir: Path) -> None:
    """At the kill: the hop of deposit `seq` got exactly as far as `place` (read on chain)."""
    across, wallet = hop_keys(seq)
    released = chain.releases(SOURCE_CHAIN_ID, f"transfer:{across}")
    deposited = chain.deposits(chain.deposit_id(across))
    filled = [] if not deposited else chain.fills(chain.deposit_id(across))
    paid = chain.releases(TRADING_CHAIN_ID, f"transfer:{wallet}")
    reached = {
        "across_released": (1, 0, 0, 0),
        "across_deposit_recorded": (1, 0, 0, 0),
        "across_deposited": (1, 1, 0, 0),
        "across_filled": (1, 1, 1, 0),
        "wallet_released": (1, 1, 1, 1),
    }[place]
    assert (len(released), len(deposited), len(filled), len(paid)) == reached, place
    if place == "across_deposit_recorded":  # signed and kept, never sent
        db = sqlite3.connect(data_dir / "anvil" / "indexmaker.sqlite3")
        try:
            rows = db.execute("SELECT fields FROM chain_txs").fetchall()
        finally:
            db.close()
        pool = chain.section(SOURCE_CHAIN_ID)["spoke_pool"].lower()
        assert [r for r in rows if json.loads(r[0])["to"].lower() == pool], rows


def check_hops(chain: OnChain, seq: int, lot: dict[str, Any], history: list[Any]) -> None:
    """Deposit `seq` crossed once and reached the exchange once; its lot's fee is the bridge
    fee plus the gas of exactly its hops' transactions (as an uninterrupted hop charges)."""
    across, wallet = hop_keys(seq)
    (release,) = chain.releases(SOURCE_CHAIN_ID, f"transfer:{across}")
    deposit_id = chain.deposit_id(across)
    (deposit,) = chain.deposits(deposit_id)
    assert not chain.deposits(chain.deposit_id(across, 1))  # never deposited again
    assert usdc_to_units(AMOUNT) == int(deposit["args"]["inputAmount"])
    (fill,) = chain.fills(deposit_id)
    assert int(fill["args"]["outputAmount"]) == usdc_to_units(AMOUNT - BRIDGE_FEE)
    # Our relayer is repaid the input on 42161 once (the kill may cut its repayment short).
    leaf = leaf_id(deposit_id)
    (repaid,) = [e["args"] for e in chain.repayments() if e["args"]["leafId"] == leaf]
    relayer = from_bytes32(fill["args"]["relayer"])
    assert (list(repaid["refundAddresses"]), list(repaid["refundAmounts"])) == (
        [relayer],
        [usdc_to_units(AMOUNT)],
    )
    (paid,) = chain.releases(TRADING_CHAIN_ID, f"transfer:{wallet}")
    receipts = [chain.receipt(SOURCE_CHAIN_ID, log) for log in (release, deposit)]
    across_gas = gas_cost_usdc(receipts, ETH_USDC)
    wallet_gas = gas_cost_usdc([chain.receipt(TRADING_CHAIN_ID, paid)], ETH_USDC)
    assert across_gas > 0 and wallet_gas > 0
    crossed = AMOUNT - BRIDGE_FEE - across_gas
    assert units_to_usdc(int(paid["args"]["amount"])) == crossed
    tx = "0x" + bytes(paid["transactionHash"]).hex()
    (credit,) = [c for c in history if c["txId"].lower() == tx]
    assert Decimal(credit["amount"]) == crossed  # the exchange credited the release once
    assert lot["ready"] and Decimal(lot["gross"]) == AMOUNT
    assert Decimal(lot["fee"]) == BRIDGE_FEE + across_gas + wallet_gas, (seq, lot)


def lot_of(serve: Serve, seq: int) -> dict[str, Any] | None:
    lots = serve.api(f"/v1/collateral/{SOURCE_CHAIN_ID}/{CLIENT}")["lots"]
    return next((lot for lot in lots if lot["seq_num"] == seq), None)


def ready(serve: Serve, seq: int, timeout: float = 120) -> dict[str, Any]:
    """CLIENT's lot of deposit `seq` once serve has it ready at the exchange."""
    deadline = time.monotonic() + timeout
    while True:
        assert serve.process.poll() is None, serve.log.read_text()[-3000:]
        lot = lot_of(serve, seq)
        if lot is not None and lot["ready"]:
            return lot
        assert time.monotonic() < deadline, f"deposit {seq} not ready: {lot}"
        time.sleep(0.2)


def deposit(serve: Serve) -> int:
    """CLIENT deposits AMOUNT into custody on 42161; its custody sequence number."""
    said = serve.cli("deposit", CLIENT, str(AMOUNT))
    found = re.search(r"on chain 42161 \(deposit #(\d+)\)", said)
    assert found, said
    return int(found.group(1))


@pytest.mark.slow
def test_serve_killed_at_each_hop_step_moves_the_collateral_once(
    compiled: None, tmp_path: Path
) -> None:
    pids: list[int] = []
    serves: list[Serve] = []
    try:
        _scenario(tmp_path, pids, serves)
    finally:  # a failed run leaves nothing behind (ours, by PID)
        for pid in [s.process.pid for s in serves] + pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _scenario(tmp_path: Path, pids: list[int], serves: list[Serve]) -> None:
    settings = tmp_path / "serve.toml"
    settings.write_text(SETTINGS)
    plan = places()

    def life(crash_at: str | None) -> Serve:
        serves.append(Serve(tmp_path, tmp_path / f"life-{len(serves)}.log", settings, crash_at))
        return serves[-1]

    # The first life's first deposit is the calm one: its hop passes every step once.
    serve = life(f"chain:{plan[0]}#2")
    pids += peer_pids(peers(tmp_path))
    assert deposit(serve) == 1
    lots = {1: ready(serve, 1)}
    for i, place in enumerate(plan):
        seq = deposit(serve)  # this life dies at `place` of this deposit's hop
        assert seq == i + 2
        assert serve.process.wait(timeout=120) == -signal.SIGKILL, serve.log.read_text()[-3000:]
        chain = OnChain(tmp_path)
        check_place(place, chain, seq, tmp_path)
        serve = life(f"chain:{plan[i + 1]}#1" if i + 1 < len(plan) else None)
        adopted = serve.event("local_peer_adopted")
        assert sorted(e["pid"] for e in adopted) == sorted(pids)  # the same chains and venue
        lots[seq] = ready(serve, seq)

    try:
        out = serve.cli("order", "SYL2", "buy", "200", "--wait", "--id", "hk-1")
        minted = re.search(r"minted (\S+) SYL2 for hk-1", out)
        assert minted, out
        chain, history = OnChain(tmp_path), credits(tmp_path)
        for seq, lot in lots.items():
            check_hops(chain, seq, lot, history)
        # Nothing else left custody, the pool or the exchange's books: one of each per deposit.
        assert len(chain.releases(SOURCE_CHAIN_ID)) == len(lots)
        assert len(chain.releases(TRADING_CHAIN_ID)) == len(lots)
        assert len(chain.deposits()) == len(lots)
        assert len(chain.repayments()) == len(lots)
        assert len(history) == len(lots)
        (mint,) = chain.mints()  # the buy minted once, what its invoice says
        quantity = Decimal(minted.group(1))
        assert chain.tokens("SYL2", CLIENT) == int(quantity.scaleb(18)) > 0
        assert int(mint["args"]["amount"]) == int(quantity.scaleb(18))
    finally:
        os.kill(serve.process.pid, signal.SIGTERM)
        code = serve.process.wait(timeout=60)
    assert code == 0, serve.log.read_text()[-3000:]

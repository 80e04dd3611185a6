"""The simulator's wallet history and rate-limiter state stay bounded over a long run (as its
orders and trades do: test_binance_sim_retention.py), while what is recent still answers.
In-process `Simulator` and `Limiter` (no socket), time passed in where the code takes it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from indexmaker.venues.binance_sim.config import LimitConfig, MarketConfig, SimConfig
from indexmaker.venues.binance_sim.errors import ApiError
from indexmaker.venues.binance_sim.exchange import now_ms
from indexmaker.venues.binance_sim.limits import MAX_IPS, Limiter
from indexmaker.venues.binance_sim.order_store import RetentionConfig
from indexmaker.venues.binance_sim.rest import Caller
from indexmaker.venues.binance_sim.server import Simulator

ACCOUNT = "bounds-test"
ADDRESS = "0x" + "ab" * 20


def wallet_sim(kept: int) -> Simulator:
    config = SimConfig(
        market=MarketConfig(symbols=("BTCUSDC",)), retention=RetentionConfig(max_transfers=kept)
    )
    sim = Simulator(config)
    sim.trading.fund(ACCOUNT, Decimal("100000000"), Decimal("1000"))
    return sim


def withdraw(sim: Simulator, client_id: str) -> str:
    params = {"coin": "USDC", "address": ADDRESS, "amount": "10", "withdrawOrderId": client_id}
    answer = sim.wallet.withdraw(params, Caller("127.0.0.1", ACCOUNT))
    assert isinstance(answer, dict)
    return str(answer["id"])


def test_finished_withdrawals_and_deposits_are_kept_up_to_the_bound() -> None:
    sim = wallet_sim(kept=40)
    wallet = sim.wallet
    caller = Caller("127.0.0.1", ACCOUNT)
    ids = {}
    for number in range(300):
        ids[number] = withdraw(sim, f"w{number}")
        wallet.deposit(ACCOUNT, "USDC", Decimal("5"), None, None)
        wallet.tick(now_ms() + 2_000)  # withdrawals finish, deposits credit (0 -> 6)
        wallet.tick(now_ms() + 2_000)  # deposits finish (6 -> 1)
    assert len(wallet.transfers) == 40  # 600 transfers went through
    history = wallet.withdraw_history({}, caller)
    assert isinstance(history, list) and 0 < len(history) <= 40
    assert history[0]["withdrawOrderId"] == "w299"  # the newest first, still there
    # a recent withdrawOrderId is still idempotent: same id, nothing debited
    free = sim.trading.account(ACCOUNT).free("USDC")
    assert withdraw(sim, "w299") == ids[299]
    assert sim.trading.account(ACCOUNT).free("USDC") == free
    # a forgotten one is a new withdrawal (documented: the bound is the memory)
    assert withdraw(sim, "w0") != ids[0]
    assert sim.trading.account(ACCOUNT).free("USDC") < free


def test_pending_transfers_are_never_dropped_by_the_bound() -> None:
    sim = wallet_sim(kept=5)
    for number in range(30):
        withdraw(sim, f"p{number}")
    sim.wallet.tick(now_ms())  # none has finished yet (each status lasts 0.5 s)
    assert len(sim.wallet.transfers) == 30
    sim.wallet.tick(now_ms() + 2_000)
    assert len(sim.wallet.transfers) == 5


def test_chain_deposits_seen_are_remembered_up_to_the_bound() -> None:
    wallet = wallet_sim(kept=10).wallet
    first = wallet.chain_deposit(ACCOUNT, "USDC", "BASE", Decimal("1"), "0xaa", 0, 5)
    assert first is not None
    assert wallet.chain_deposit(ACCOUNT, "USDC", "BASE", Decimal("1"), "0xaa", 0, 5) is None
    for index in range(1, 50):
        wallet.chain_deposit(ACCOUNT, "USDC", "BASE", Decimal("1"), "0xbb", index, 6)
    assert len(wallet._chain_seen) == 10
    assert wallet.chain_deposit(ACCOUNT, "USDC", "BASE", Decimal("1"), "0xbb", 49, 6) is None


def test_idle_addresses_are_forgotten_banned_ones_are_not() -> None:
    limiter = Limiter(LimitConfig(weight_per_minute=10, refusals_before_ban=1))
    start = 1_800_000_000_000
    for _ in range(3):  # 429, 429, then 418: the offender is banned
        with pytest.raises(ApiError):
            limiter.charge("10.0.0.1", 20, start)
    # a new address a second: about 300 are inside their 5-minute raw-request window at once
    for number in range(5 * MAX_IPS):
        limiter.charge(f"127.1.{number // 256}.{number % 256}", 1, start + number * 1_000)
        assert limiter.known_ips <= MAX_IPS + 1
    later = start + 5 * MAX_IPS * 1_000  # the offender's windows and its ban are over
    limiter.charge("127.9.9.9", 1, later)
    # the offender is remembered: its next ban is longer than its first
    for _ in range(3):
        with pytest.raises(ApiError) as refused:
            limiter.charge("10.0.0.1", 20, later)
    assert refused.value.status == 418 and refused.value.retry_after == 240


def test_unfilled_order_decrements_are_applied_as_they_fall_due() -> None:
    limiter = Limiter(LimitConfig(orders_per_10s=100_000, orders_per_day=10**9))
    start = 1_800_000_000_000
    for number in range(20_000):  # fills of resting orders, no new order to settle them
        limiter.first_fill("main", start + number * 10)
    assert len(limiter._accounts["main"].pending) <= 101  # the last second's fills only
    assert limiter.order_counts("main", start + 400_000) == (0, 0)

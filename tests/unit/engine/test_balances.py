"""engine/balances.py: the venue's balances checked against what the issuer's lots hold."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from indexmaker.core.events import Alert, VenueBalance
from indexmaker.core.ids import Asset, BatchId, ClientOrderId, TradeId, Venue, instrument
from indexmaker.engine.balances import VenueBalances
from indexmaker.engine.inventory import InventoryManager
from indexmaker.model.filters import InstrumentRules

D = Decimal
NOW = datetime(2025, 10, 1, tzinfo=UTC)
BINANCE = Venue("binance")
BTC, BTC_USDT = instrument("BTCUSDC"), instrument("BTCUSDT")
RULES = {
    BTC: InstrumentRules(BTC, "BTC", "USDC", tick_size=D("0.01"), step_size=D("0.00001")),
    BTC_USDT: InstrumentRules(BTC_USDT, "BTC", "USDT", tick_size=D("0.01"), step_size=D("0.00001")),
}


def balance(free: str, locked: str = "0", asset: str = "BTC") -> VenueBalance:
    return VenueBalance(BINANCE, Asset(asset), D(free), D(locked), NOW)


def test_lots_held_count_assigned_lots_and_both_pairs_of_the_asset_until_disposed() -> None:
    inventory = InventoryManager()
    first = inventory.open_lot(BTC, TradeId("t1"), D("100"), D("0.3"), D("0"), NOW, None)
    inventory.open_lot(BTC_USDT, TradeId("t2"), D("100"), D("0.2"), D("0"), NOW, None)
    inventory.assign(first, ClientOrderId("A1"), D("0.3"))  # minted: still held at the venue
    inventory.open_lot(BTC, TradeId("t3"), D("100"), D("0.1"), D("0"), NOW, BatchId(1))
    assert inventory.held_quantity(BTC) == D("0.4")
    assert inventory.held_quantity(BTC_USDT) == D("0.2")
    assert inventory.dispose(BTC_USDT, D("0.05")) == D("0.05")
    assert inventory.held_quantity(BTC_USDT) == D("0.15")
    inventory.redeem(BTC, D("0.1"))  # a redemption sells part of the minted lot
    assert inventory.held_quantity(BTC) == D("0.3")


def test_a_balance_short_twice_in_a_row_alerts_once_until_covered_again() -> None:
    inventory = InventoryManager()
    inventory.open_lot(BTC, TradeId("t1"), D("100"), D("0.3"), D("0"), NOW, None)
    inventory.open_lot(BTC_USDT, TradeId("t2"), D("100"), D("0.2"), D("0"), NOW, None)
    balances = VenueBalances(inventory)
    assert balances.on_balance(balance("0.4", "0.1"), RULES) == []  # free + locked cover 0.5
    assert balances.on_balance(balance("0.4"), RULES) == []  # short once: may be a stale report
    alerts = balances.on_balance(balance("0.4", "0.05"), RULES)
    assert alerts == [
        Alert(
            "balance_short",
            "binance BTC: the venue holds 0.45 (free 0.4, locked 0.05), our lots hold 0.5",
        )
    ]
    assert balances.on_balance(balance("0.3"), RULES) == []  # said once per shortfall
    assert balances.short == {(BINANCE, Asset("BTC"))}
    assert balances.on_balance(balance("0.5"), RULES) == []  # covered again
    assert not balances.short
    assert balances.on_balance(balance("0.1"), RULES) == []
    assert [a.code for a in balances.on_balance(balance("0.1"), RULES)] == ["balance_short"]
    assert balances.latest[(BINANCE, Asset("BTC"))] == balance("0.1")


def test_assets_no_lot_holds_are_recorded_never_short() -> None:
    balances = VenueBalances(InventoryManager())
    assert balances.on_balance(balance("0", asset="USDC"), RULES) == []
    assert balances.on_balance(balance("0", asset="USDC"), RULES) == []
    assert balances.on_balance(balance("0"), RULES) == []  # BTC: no lot yet
    assert balances.on_balance(balance("0"), RULES) == []
    assert set(balances.latest) == {(BINANCE, Asset("USDC")), (BINANCE, Asset("BTC"))}

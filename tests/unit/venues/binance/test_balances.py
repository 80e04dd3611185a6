"""venues/binance/balances.py: account.status, outboundAccountPosition and balanceUpdate
(Binance's JSON shapes) turned into exact `VenueBalance`s."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from indexmaker.core.events import VenueBalance
from indexmaker.core.ids import Asset, Venue
from indexmaker.venues.binance.balances import Balances

D = Decimal
V = Venue("binance")
AT = datetime(2025, 10, 1, 12, 0, 0, 500_000, tzinfo=UTC)
MS = int(AT.timestamp() * 1000)


def test_account_then_position_then_balance_update() -> None:
    book = Balances(V)
    start = book.on_account(
        {
            "updateTime": MS,
            "balances": [
                {"asset": "BTC", "free": "1.00000000", "locked": "0.00000000"},
                {"asset": "USDC", "free": "1000.12345678", "locked": "5.5"},
            ],
        }
    )
    assert start == [
        VenueBalance(V, Asset("BTC"), D("1.00000000"), D("0E-8"), AT),
        VenueBalance(V, Asset("USDC"), D("1000.12345678"), D("5.5"), AT),
    ]
    position = book.on_user_event(
        {
            "e": "outboundAccountPosition",
            "E": MS + 1,
            "u": MS,
            "B": [{"a": "BTC", "f": "1.2", "l": "0.1"}],
        }
    )
    assert position == [VenueBalance(V, Asset("BTC"), D("1.2"), D("0.1"), AT)]
    # a deposit's delta applies to the known free balance, exactly
    deposit = book.on_user_event(
        {"e": "balanceUpdate", "E": MS, "a": "USDC", "d": "0.00000001", "T": MS}
    )
    assert deposit == [VenueBalance(V, Asset("USDC"), D("1000.12345679"), D("5.5"), AT)]
    withdrawal = book.on_user_event({"e": "balanceUpdate", "a": "BTC", "d": "-0.2", "T": MS})
    assert withdrawal[0].free == D("1.0") and withdrawal[0].locked == D("0.1")


def test_unknown_assets_and_other_events_give_nothing() -> None:
    book = Balances(V)
    assert book.on_user_event({"e": "balanceUpdate", "a": "ETH", "d": "1", "T": MS}) == []
    assert book.on_user_event({"e": "executionReport", "s": "BTCUSDC"}) == []
    assert book.on_user_event({"e": "outboundAccountPosition", "B": []}) == []
    assert book.free == {}

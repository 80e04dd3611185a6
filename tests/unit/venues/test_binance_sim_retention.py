"""The simulator's order and trade storage stays bounded over a long run, as Binance bounds it
(closed unfilled orders archived after a window: -2026; our own count bounds: -2013), while
recent and open orders stay queryable. In-process `Simulator` (no socket), time passed in."""

from __future__ import annotations

from decimal import Decimal

import pytest

from indexmaker.venues.binance_sim.config import MarketConfig, SimConfig
from indexmaker.venues.binance_sim.errors import ApiError
from indexmaker.venues.binance_sim.order_params import parse_order
from indexmaker.venues.binance_sim.order_store import RetentionConfig
from indexmaker.venues.binance_sim.server import Simulator
from indexmaker.venues.binance_sim.symbols import fmt8

SYMBOL = "BTCUSDC"
ACCOUNT = "retention-test"
T0 = 1_800_000_000_000


def simulator(retention: RetentionConfig) -> Simulator:
    sim = Simulator(SimConfig(market=MarketConfig(symbols=(SYMBOL,)), retention=retention))
    sim.trading.fund(ACCOUNT, Decimal("100000000"), Decimal("1000000"))
    return sim


def place(sim: Simulator, client_id: str, now: int, cross: bool) -> int:
    """A BUY worth twice the NOTIONAL floor: resting far below the book (GTC), or IOC
    through the best ask."""
    spec = sim.exchange.specs[SYMBOL]
    book = sim.exchange.books[SYMBOL]
    best_ask = book.best(False)
    best_bid = book.best(True)
    assert best_ask is not None and best_bid is not None
    ticks = best_ask.price if cross else best_bid.price * 9 // 10
    price = spec.price_of(ticks)
    steps = int(2 * spec.min_notional / (price * spec.step)) + 1  # twice the NOTIONAL floor
    params = {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "IOC" if cross else "GTC",
        "quantity": fmt8(spec.step * steps),
        "price": fmt8(price),
        "newClientOrderId": client_id,
    }
    order = sim.trading.place(ACCOUNT, parse_order(sim.exchange, params, "auto"), now)
    return order.order_id


def code_of(sim: Simulator, order_id: int | None, client_id: str | None) -> int | str:
    try:
        return sim.trading.find(ACCOUNT, SYMBOL, order_id, client_id).status
    except ApiError as error:
        return error.code


def test_memory_stays_bounded_over_a_long_run_and_recent_orders_answer() -> None:
    retention = RetentionConfig(
        archive_after_ms=50, max_closed_orders=200, max_trades=150, max_archived=100
    )
    sim = simulator(retention)
    store = sim.trading.store
    peak: dict[str, int] = {}
    ids: list[tuple[int, str]] = []
    for number in range(3_000):  # bounded loop: placed, then cancelled or filled at once
        now = T0 + number
        client_id = f"r{number}"
        order_id = place(sim, client_id, now, cross=number % 3 == 0)
        if number % 3:
            sim.trading.cancel(ACCOUNT, SYMBOL, order_id, None, None, now)
        ids.append((order_id, client_id))
        for name, size in store.sizes().items():
            peak[name] = max(peak.get(name, 0), size)
    assert store.pruned >= 2_700  # the loop did close far more orders than are kept
    assert peak["closed"] <= 200 and peak["orders"] <= 200 and peak["by_client"] <= 200
    assert peak["unfilled_closed"] <= 200
    assert peak["archived_ids"] <= 2 * 100
    assert peak["trades"] <= 150
    assert len(sim.trading.open) == 0
    # the newest orders still answer by id and by client id, with their final status
    last_filled_id, last_filled_client = ids[-3]  # number 2997: crossed (IOC)
    assert code_of(sim, last_filled_id, None) in ("FILLED", "PARTIALLY_FILLED", "EXPIRED")
    assert code_of(sim, None, ids[-1][1]) == "CANCELED"
    assert code_of(sim, last_filled_id, last_filled_client) == code_of(sim, last_filled_id, None)
    # the oldest are gone: forgotten by the count bound (-2013)
    assert code_of(sim, ids[0][0], None) == -2013
    assert code_of(sim, None, ids[0][1]) == -2013


def test_unfilled_closed_orders_are_archived_after_the_window_filled_ones_stay() -> None:
    sim = simulator(RetentionConfig(archive_after_ms=1_000, max_closed_orders=1_000))
    resting = place(sim, "old-cancelled", T0, cross=False)
    sim.trading.cancel(ACCOUNT, SYMBOL, resting, None, None, T0)
    filled = place(sim, "old-filled", T0, cross=True)
    still_open = place(sim, "old-open", T0, cross=False)
    assert code_of(sim, resting, None) == "CANCELED"
    # one millisecond short of the window: still answered
    later = place(sim, "later", T0 + 999, cross=False)
    sim.trading.cancel(ACCOUNT, SYMBOL, later, None, None, T0 + 999)
    assert code_of(sim, resting, None) == "CANCELED"
    # a close at the window's end archives it: -2026 by id and by client id
    last = place(sim, "last", T0 + 1_000, cross=False)
    sim.trading.cancel(ACCOUNT, SYMBOL, last, None, None, T0 + 1_000)
    assert code_of(sim, resting, None) == -2026
    assert code_of(sim, None, "old-cancelled") == -2026
    assert code_of(sim, filled, None) != -2026  # something executed: kept
    assert code_of(sim, still_open, "old-open") == "NEW"  # open orders are never pruned
    assert code_of(sim, None, "later") == "CANCELED"


def test_open_orders_survive_the_count_bound_and_a_reused_client_id_keeps_the_newest() -> None:
    sim = simulator(RetentionConfig(max_closed_orders=1))
    open_ids = [place(sim, f"open{n}", T0 + n, cross=False) for n in range(5)]
    first = place(sim, "again", T0 + 10, cross=False)
    sim.trading.cancel(ACCOUNT, SYMBOL, first, None, None, T0 + 10)
    second = place(sim, "again", T0 + 11, cross=False)  # same client id, after the close
    sim.trading.cancel(ACCOUNT, SYMBOL, second, None, None, T0 + 11)
    third = place(sim, "again", T0 + 12, cross=False)  # the count bound drops `second`
    assert [code_of(sim, order_id, None) for order_id in open_ids] == ["NEW"] * 5
    assert code_of(sim, first, None) == -2013
    assert code_of(sim, None, "again") == "NEW"
    assert sim.trading.find(ACCOUNT, SYMBOL, None, "again").order_id == third


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--keep-closed-orders", "0", "--keep-closed-orders: must be at least 1"),
        ("--keep-trades", "-1", "--keep-trades: must be at least 1"),
        ("--archive-after-s", "-5", "--archive-after-s: must be >= 0"),
    ],
)
def test_retention_options_are_checked(option: str, value: str, message: str) -> None:
    import argparse

    from indexmaker.venues.binance_sim.cli import add_arguments, config_from

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ValueError, match=message):
        config_from(parser.parse_args([option, value]))

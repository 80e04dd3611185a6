"""Orders over REST against the simulator process: matching, fills and commissions, balances,
filters and their error codes, signatures and timing, self-trade prevention, order faults."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from .conftest import SimProcess, balance, best, rest, started

_ids = itertools.count(1)


def cid(prefix: str = "o") -> str:
    return f"{prefix}{next(_ids)}-{id(object())}"[:36]


def place(
    sim: SimProcess,
    symbol: str,
    side: str,
    quantity: object = None,
    price: object = None,
    kind: str = "LIMIT",
    tif: str = "IOC",
    account: str | None = "main",
    **extra: Any,
) -> tuple[int, dict[str, str], Any]:
    """POST /api/v3/order (a LIMIT IOC unless told): (status, headers, body)."""
    params: dict[str, Any] = {"symbol": symbol, "side": side, "type": kind, **extra}
    if kind != "MARKET":
        params["timeInForce"] = tif
    if quantity is not None:
        params["quantity"] = str(quantity)
    if price is not None:
        params["price"] = str(price)
    return rest(sim, "POST", "/api/v3/order", account, **params)


def test_ioc_buy_fills_at_the_ask_and_pays_commission_in_base(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["ETHUSDC"]})
    _, asks = best(sim, "ETHUSDC")
    (p1, q1), (p2, q2) = asks[0], asks[1]
    half = (Decimal(q2) / 2).quantize(Decimal("0.000001"), rounding="ROUND_FLOOR")  # ETH's step
    qty = Decimal(q1) + half
    usdc_before, _ = balance(sim, "USDC")
    eth_before, _ = balance(sim, "ETH")
    status, headers, order = place(sim, "ETHUSDC", "BUY", str(qty), p2, newClientOrderId=cid())
    assert status == 200, order
    assert order["status"] == "FILLED" and Decimal(order["executedQty"]) == qty
    assert int(headers["X-MBX-ORDER-COUNT-10S"]) >= 1
    fills = order["fills"]
    assert [(f["price"], Decimal(f["qty"])) for f in fills] == [
        (p1, Decimal(q1)),
        (p2, half),
    ]
    assert all(f["commissionAsset"] == "ETH" for f in fills)
    commission = sum(Decimal(f["commission"]) for f in fills)
    assert commission == sum(
        (Decimal(f["qty"]) * Decimal("0.001")).quantize(Decimal("1e-8")) for f in fills
    )
    cost = sum((Decimal(f["price"]) * Decimal(f["qty"])).quantize(Decimal("1e-8")) for f in fills)
    assert Decimal(order["cummulativeQuoteQty"]) == cost
    assert balance(sim, "USDC") == (usdc_before - cost, Decimal(0))
    assert balance(sim, "ETH")[0] == eth_before + qty - commission
    _, asks_after = best(sim, "ETHUSDC")
    assert asks_after[0] == [p2, f"{Decimal(q2) - half:.8f}"]
    _, _, trades = rest(sim, "GET", "/api/v3/myTrades", symbol="ETHUSDC", orderId=order["orderId"])
    assert [t["id"] for t in trades] == [f["tradeId"] for f in fills]
    assert all(t["isBuyer"] and not t["isMaker"] for t in trades)


def test_partial_ioc_expires_and_fok_fills_nothing(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["SOLUSDC"]})
    bids, _ = best(sim, "SOLUSDC")
    price, qty = bids[0]
    more = Decimal(qty) * 2
    _, _, ioc = place(sim, "SOLUSDC", "SELL", f"{more:.8f}", price)
    assert ioc["status"] == "EXPIRED" and ioc["expiryReason"] == "UNFILLED_IOC_QUANTITY_EXPIRED"
    assert Decimal(ioc["executedQty"]) == Decimal(qty)
    assert ioc["fills"][0]["commissionAsset"] == "USDC"  # a seller pays in quote
    bids, _ = best(sim, "SOLUSDC")
    _, _, fok = place(
        sim, "SOLUSDC", "SELL", f"{Decimal(bids[0][1]) * 2:.8f}", bids[0][0], tif="FOK"
    )
    assert fok["status"] == "EXPIRED" and fok["fills"] == [] and fok["executedQty"] == "0.00000000"
    assert best(sim, "SOLUSDC")[0][0] == bids[0]


def test_resting_order_is_in_the_book_until_cancelled(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["BTCUSDC"]})
    bids, _ = best(sim, "BTCUSDC")
    price, qty = bids[1]
    client_id = cid("rest")
    _, _, placed = place(
        sim, "BTCUSDC", "BUY", "0.01", price, tif="GTC", newClientOrderId=client_id
    )
    assert placed["status"] == "NEW"
    assert best(sim, "BTCUSDC")[0][1] == [price, f"{Decimal(qty) + Decimal('0.01'):.8f}"]
    locked = balance(sim, "USDC")[1]
    assert locked == Decimal(price) * Decimal("0.01")
    _, _, open_orders = rest(sim, "GET", "/api/v3/openOrders", symbol="BTCUSDC")
    assert [o["clientOrderId"] for o in open_orders] == [client_id]
    status, _, duplicate = place(
        sim, "BTCUSDC", "BUY", "0.01", price, tif="GTC", newClientOrderId=client_id
    )
    assert (status, duplicate) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    _, _, cancelled = rest(
        sim, "DELETE", "/api/v3/order", symbol="BTCUSDC", origClientOrderId=client_id
    )
    assert cancelled["status"] == "CANCELED" and cancelled["origClientOrderId"] == client_id
    assert best(sim, "BTCUSDC")[0][1] == [price, qty]
    assert balance(sim, "USDC")[1] == 0
    status, _, again = rest(
        sim, "DELETE", "/api/v3/order", symbol="BTCUSDC", origClientOrderId=client_id
    )
    assert (status, again["code"]) == (400, -2011)
    status, _, unknown = rest(
        sim, "GET", "/api/v3/order", symbol="BTCUSDC", origClientOrderId="never"
    )
    assert (status, unknown["code"]) == (400, -2013)
    _, _, queried = rest(sim, "GET", "/api/v3/order", symbol="BTCUSDC", orderId=placed["orderId"])
    assert queried["status"] == "CANCELED"


def test_filters_and_parameter_errors(sim: SimProcess) -> None:
    _, asks = best(sim, "BTCUSDC")
    price = Decimal(asks[0][0])
    cases = [
        (
            {"price": str(price + Decimal("0.05")), "quantity": "0.01"},
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        ({"price": str(price), "quantity": "0.000000015"}, -1111, None),
        ({"price": str(price), "quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),
        (
            {"price": str(price * 6), "quantity": "0.01"},
            -1013,
            "Filter failure: PERCENT_PRICE_BY_SIDE",
        ),
        ({"price": "1e5", "quantity": "0.01"}, -1100, None),
        ({"price": str(price)}, -1102, None),
    ]
    for extra, code, message in cases:
        status, _, error = place(sim, "BTCUSDC", "BUY", **extra)
        assert status == 400 and error["code"] == code, (extra, error)
        if message:
            assert error["msg"] == message
    status, _, error = place(sim, "BTCUSDC", "HOLD", "0.01", str(price))
    assert error["code"] == -1117
    status, _, error = place(sim, "PEPEUSDC", "BUY", "1500", best(sim, "PEPEUSDC")[1][0][0])
    assert (status, error["msg"]) == (400, "Filter failure: LOT_SIZE")


def test_signature_timing_and_key_errors(sim: SimProcess) -> None:
    status, _, error = rest(sim, "GET", "/api/v3/account", timestamp_shift=-10_000)
    assert (status, error["code"]) == (400, -1021)
    status, _, error = rest(sim, "GET", "/api/v3/account", timestamp_shift=2_000)
    assert error["code"] == -1021
    status, _, error = rest(sim, "GET", "/api/v3/account", account=None)
    assert (status, error["code"]) == (401, -2014)
    import urllib.request

    request = urllib.request.Request(
        f"{sim.url}/api/v3/account?timestamp=1&signature=00",
        headers={
            "X-MBX-APIKEY": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
        },
    )
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as refused:
        assert refused.code == 400
    import json
    import time

    stamp = int(time.time() * 1000)
    request = urllib.request.Request(
        f"{sim.url}/api/v3/account?timestamp={stamp}&signature=00",
        headers={
            "X-MBX-APIKEY": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
        },
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a bad signature was accepted")
    except urllib.error.HTTPError as refused:
        assert json.loads(refused.read())["code"] == -1022


def test_self_trade_prevention_modes(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["ETHUSDC"]})
    bids, asks = best(sim, "ETHUSDC")
    inside = f"{(Decimal(bids[0][0]) + Decimal(asks[0][0])) / 2:.2f}"
    _, _, maker = place(sim, "ETHUSDC", "SELL", "0.01", inside, tif="GTC")
    assert maker["status"] == "NEW" and best(sim, "ETHUSDC")[1][0][0] == f"{Decimal(inside):.8f}"
    _, _, taker = place(
        sim, "ETHUSDC", "BUY", "0.01", inside, selfTradePreventionMode="EXPIRE_TAKER"
    )
    assert taker["status"] == "EXPIRED_IN_MATCH" and taker["fills"] == []
    assert "preventedMatchId" in taker
    _, _, still = rest(sim, "GET", "/api/v3/order", symbol="ETHUSDC", orderId=maker["orderId"])
    assert still["status"] == "NEW"
    # Another account trades with it normally; the maker sees a maker fill.
    _, _, other = place(sim, "ETHUSDC", "BUY", "0.004", inside, account="second")
    assert other["status"] == "FILLED" and other["fills"][0]["price"] == f"{Decimal(inside):.8f}"
    _, _, maker_trades = rest(
        sim, "GET", "/api/v3/myTrades", symbol="ETHUSDC", orderId=maker["orderId"]
    )
    assert maker_trades[0]["isMaker"] and maker_trades[0]["id"] == other["fills"][0]["tradeId"]
    _, _, expire_maker = place(
        sim, "ETHUSDC", "BUY", "0.01", asks[0][0], selfTradePreventionMode="EXPIRE_MAKER"
    )
    assert expire_maker["status"] == "FILLED"
    assert all(f["price"] == asks[0][0] for f in expire_maker["fills"])  # the own order was skipped
    _, _, gone = rest(sim, "GET", "/api/v3/order", symbol="ETHUSDC", orderId=maker["orderId"])
    assert gone["status"] == "EXPIRED_IN_MATCH" and gone["executedQty"] == "0.00400000"


def test_market_orders_by_quantity_and_by_quote(clean_sim: SimProcess) -> None:
    sim = clean_sim
    _, _, by_quote = place(sim, "SOLUSDC", "BUY", kind="MARKET", quoteOrderQty="100")
    assert by_quote["status"] == "FILLED"
    spent = Decimal(by_quote["cummulativeQuoteQty"])
    assert Decimal(100) - Decimal("0.01") < spent <= Decimal(100)
    assert Decimal(by_quote["origQty"]) == Decimal(by_quote["executedQty"]) > 0
    _, _, by_qty = place(sim, "SOLUSDC", "SELL", "0.5", kind="MARKET")
    assert by_qty["status"] == "FILLED" and by_qty["executedQty"] == "0.50000000"


def test_order_faults_reject_and_unknown_outcome(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["ETHUSDC"]})
    _, asks = best(sim, "ETHUSDC")
    sim.admin("POST", {"reject_next_orders": 1})
    client_id = cid("rej")
    status, _, refused = place(
        sim, "ETHUSDC", "BUY", "0.01", asks[2][0], newClientOrderId=client_id
    )
    assert (status, refused["code"]) == (400, -2010)
    assert (
        rest(sim, "GET", "/api/v3/order", symbol="ETHUSDC", origClientOrderId=client_id)[2]["code"]
        == -2013
    )
    for mode, expected in (("5xx", 503), ("-1007", 408)):
        sim.admin("POST", {"unknown_next_orders": 1, "unknown_mode": mode})
        client_id = cid("unk")
        _, asks = best(sim, "ETHUSDC")
        status, _, answer = place(
            sim, "ETHUSDC", "BUY", "0.01", asks[2][0], newClientOrderId=client_id
        )
        assert status == expected and answer["code"] in (-1001, -1007)
        _, _, truth = rest(
            sim, "GET", "/api/v3/order", symbol="ETHUSDC", origClientOrderId=client_id
        )
        assert truth["status"] == "FILLED"  # it did execute


def test_halt_and_delist(clean_sim: SimProcess) -> None:
    sim = clean_sim
    bids, asks = best(sim, "PEPEUSDC")
    _, _, resting = place(sim, "PEPEUSDC", "BUY", "1000000", bids[3][0], tif="GTC")
    assert resting["status"] == "NEW"
    sim.admin("POST", {"symbol_status": {"PEPEUSDC": "HALT"}})
    status, _, closed = place(sim, "PEPEUSDC", "BUY", "1000000", asks[0][0])
    assert (status, closed["msg"]) == (400, "Market is closed.")
    sim.admin("POST", {"symbol_status": {"PEPEUSDC": "TRADING"}})
    sim.admin("POST", {"delist": ["PEPEUSDC"]})
    _, _, order = rest(sim, "GET", "/api/v3/order", symbol="PEPEUSDC", orderId=resting["orderId"])
    assert order["status"] == "CANCELED"
    _, _, info = rest(sim, "GET", "/api/v3/exchangeInfo", None, symbol="PEPEUSDC")
    assert info["symbols"][0]["status"] == "BREAK"
    assert best(sim, "PEPEUSDC") == ([], [])


def test_order_count_limit_answers_429_with_retry_after() -> None:
    with started("--symbols", "ETHUSDC", "--orders-10s", "3") as sim:
        statuses = []
        for _ in range(4):
            status, headers, body = place(sim, "ETHUSDC", "BUY", "0.01", "3000.000", tif="GTC")
            statuses.append(status)
        if statuses[:3] == [200, 200, 200]:  # one 10 s window (else it rolled over mid-test)
            assert statuses[3] == 429 and body["code"] == -1015
            assert 1 <= int(headers["Retry-After"]) <= 10


def test_unfilled_order_count_gives_back_a_filled_order_a_moment_later() -> None:
    import time

    with started("--symbols", "ETHUSDC") as sim:
        sim.admin("POST", {"freeze": ["ETHUSDC"]})
        _, asks = best(sim, "ETHUSDC")
        start = time.time()
        _, first, filled = place(sim, "ETHUSDC", "BUY", "0.01", asks[1][0])
        _, second, resting = place(sim, "ETHUSDC", "BUY", "0.01", "3000.000", tif="GTC")
        assert filled["status"] == "FILLED" and resting["status"] == "NEW"
        time.sleep(1.2)
        _, _, limits = rest(sim, "GET", "/api/v3/rateLimit/order")
        counts = {r["interval"]: r["count"] for r in limits}
        if int(start) // 10 == int(time.time()) // 10:  # still the same 10 s window
            # Both count at first; the filled one is given back after the decrement delay.
            assert (first["X-MBX-ORDER-COUNT-10S"], second["X-MBX-ORDER-COUNT-10S"]) == ("1", "2")
            assert counts["SECOND"] == 1
        assert counts["DAY"] == 1


def test_maintenance_refuses_everything_but_time(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"maintenance": True})
    status, _, error = rest(sim, "GET", "/api/v3/depth", None, symbol="BTCUSDC")
    assert (status, error["code"]) == (503, -1016)
    status, _, error = place(sim, "BTCUSDC", "BUY", "0.001", kind="MARKET")
    assert (status, error["code"]) == (503, -1016)
    assert rest(sim, "GET", "/api/v3/time", None)[0] == 200
    assert rest(sim, "GET", "/sapi/v1/system/status", None)[2]["status"] == 1
    sim.admin("DELETE")
    assert rest(sim, "GET", "/api/v3/depth", None, symbol="BTCUSDC")[0] == 200
    assert rest(sim, "GET", "/sapi/v1/system/status", None)[2]["status"] == 0

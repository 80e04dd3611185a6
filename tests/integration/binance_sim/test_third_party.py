"""Third-party Binance clients pointed at the simulator, unpatched: only their base URLs are
configured (as one would for a testnet). Market data, orders and account queries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .conftest import KEYS, SimProcess, best

API_KEY, SECRET = KEYS["main"]


def test_ccxt(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["SOLUSDC"]})
    ccxt = pytest.importorskip("ccxt")
    exchange = ccxt.binance(
        {
            "apiKey": API_KEY,
            "secret": SECRET,
            # Spot only: the simulator has no futures (fapi/dapi) endpoints.
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchMargins": False,
                "adjustForTimeDifference": True,
            },
        }
    )
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str) and url.startswith("https://api.binance.com"):
            exchange.urls["api"][name] = url.replace("https://api.binance.com", sim.url)
    markets = exchange.load_markets()
    assert "BTC/USDC" in markets and markets["BTC/USDC"]["precision"]["price"] is not None
    book = exchange.fetch_order_book("BTC/USDC", limit=10)
    assert book["bids"][0][0] < book["asks"][0][0] and len(book["bids"]) == 10
    _, asks = best(sim, "SOLUSDC")
    order = exchange.create_order(
        "SOL/USDC", "limit", "buy", 0.5, float(asks[1][0]), {"timeInForce": "IOC"}
    )
    assert order["status"] == "closed" and order["filled"] == 0.5
    assert order["trades"] and order["fee"]["currency"] == "SOL"
    fetched = exchange.fetch_order(order["id"], "SOL/USDC")
    assert fetched["status"] == "closed"
    balance = exchange.fetch_balance()
    assert balance["USDC"]["free"] > 0
    trades = exchange.fetch_my_trades("SOL/USDC")
    assert any(t["order"] == order["id"] for t in trades)


def test_python_binance(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["ETHUSDC"]})
    binance_client = pytest.importorskip("binance.client")
    client = binance_client.Client(API_KEY, SECRET, ping=False)
    client.API_URL = f"{sim.url}/api"  # the client's own base-URL attribute
    assert client.get_server_time()["serverTime"] > 0
    depth = client.get_order_book(symbol="ETHUSDC", limit=5)
    assert len(depth["bids"]) == 5 and depth["lastUpdateId"] > 0
    _, asks = best(sim, "ETHUSDC")
    order = client.create_order(
        symbol="ETHUSDC",
        side="BUY",
        type="LIMIT",
        timeInForce="IOC",
        quantity="0.01",
        price=asks[1][0],
    )
    assert order["status"] == "FILLED" and order["fills"]
    assert client.get_order(symbol="ETHUSDC", orderId=order["orderId"])["status"] == "FILLED"
    account = client.get_account()
    assert any(b["asset"] == "ETH" and Decimal(b["free"]) > 0 for b in account["balances"])
    assert client.get_open_orders(symbol="ETHUSDC") == []
    client.close_connection()


def test_binance_sdk_spot(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["BTCUSDC"]})
    spot_module = pytest.importorskip("binance_sdk_spot.spot")
    common = pytest.importorskip("binance_common.configuration")
    config = common.ConfigurationRestAPI(api_key=API_KEY, api_secret=SECRET, base_path=sim.url)
    client = spot_module.Spot(config_rest_api=config)
    depth = client.rest_api.depth(symbol="BTCUSDC", limit=5).data()
    assert len(depth.bids) == 5 and depth.last_update_id > 0
    _, asks = best(sim, "BTCUSDC")
    models = pytest.importorskip("binance_sdk_spot.rest_api.models")
    placed = client.rest_api.new_order(
        symbol="BTCUSDC",
        side=models.NewOrderSideEnum["BUY"].value,
        type=models.NewOrderTypeEnum["LIMIT"].value,
        time_in_force=models.NewOrderTimeInForceEnum["IOC"].value,
        quantity=0.001,
        price=float(asks[1][0]),
    ).data()
    assert placed.status == "FILLED"
    account = client.rest_api.get_account().data()
    assert any(b.asset == "BTC" for b in account.balances)
    status = client.rest_api.get_order(symbol="BTCUSDC", order_id=placed.order_id).data()
    assert status.status == "FILLED"

"""The WebSocket API against the simulator process: Ed25519 session.logon, orders without
per-request signatures after logon, user data over userDataStream.subscribe(.signature),
user-data faults, serverShutdown."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from indexmaker.venues.binance_sim.config import (
    TEST_ED25519_API_KEY,
    TEST_ED25519_SEED,
    TEST_HMAC_API_KEY,
    TEST_HMAC_SECRET,
)

from .conftest import SimProcess, best

ED_KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(TEST_ED25519_SEED))
_ids = itertools.count(1)


def _payload(params: dict[str, Any]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()))


def ed_signed(params: dict[str, Any]) -> dict[str, Any]:
    params = {**params, "apiKey": TEST_ED25519_API_KEY, "timestamp": int(time.time() * 1000)}
    params["signature"] = base64.b64encode(ED_KEY.sign(_payload(params).encode())).decode()
    return params


def hmac_signed(params: dict[str, Any]) -> dict[str, Any]:
    params = {**params, "apiKey": TEST_HMAC_API_KEY, "timestamp": int(time.time() * 1000)}
    digest = hmac.new(TEST_HMAC_SECRET.encode(), _payload(params).encode(), hashlib.sha256)
    params["signature"] = digest.hexdigest()
    return params


class Client:
    """Requests by id; everything else (user data, events) is kept in `events`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.answers: dict[Any, dict[str, Any]] = {}

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        ident = f"r{next(_ids)}"
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while ident not in self.answers:
            await self._read()
        return self.answers.pop(ident)

    async def _read(self, timeout: float = 5) -> None:
        message = await self.ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        if "status" in data and "id" in data:
            self.answers[data["id"]] = data
        else:
            self.events.append(data)

    async def wait_events(self, predicate: Any, timeout: float = 5) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await self._read(left)
            except TimeoutError:
                break
        return self.events


async def _connect(
    session: aiohttp.ClientSession, sim: SimProcess
) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(f"{sim.ws}/ws-api/v3")


async def test_logon_then_orders_need_no_signature(clean_sim: SimProcess) -> None:
    sim = clean_sim
    _, asks = best(sim, "ETHUSDC")
    async with aiohttp.ClientSession() as session, await _connect(session, sim) as ws:
        client = Client(ws)
        logon = await client.call("session.logon", ed_signed({}))
        assert logon["status"] == 200 and logon["result"]["apiKey"] == TEST_ED25519_API_KEY
        assert any(r["rateLimitType"] == "REQUEST_WEIGHT" for r in logon["rateLimits"])
        placed = await client.call(
            "order.place",
            {
                "symbol": "ETHUSDC",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "IOC",
                "quantity": "0.01",
                "price": asks[1][0],
                "timestamp": int(time.time() * 1000),
            },
        )
        assert placed["status"] == 200 and placed["result"]["status"] == "FILLED"
        assert placed["result"]["fills"]
        status = await client.call(
            "order.status",
            {
                "symbol": "ETHUSDC",
                "orderId": placed["result"]["orderId"],
                "timestamp": int(time.time() * 1000),
            },
        )
        assert status["result"]["status"] == "FILLED"
        account = await client.call("account.status", {"timestamp": int(time.time() * 1000)})
        assert any(b["asset"] == "ETH" for b in account["result"]["balances"])
        orders = await client.call(
            "openOrders.status", {"symbol": "ETHUSDC", "timestamp": int(time.time() * 1000)}
        )
        assert orders["result"] == []
        no_time = await client.call("account.status", {})
        assert no_time["status"] == 400 and no_time["error"]["code"] == -1102
        retired = await client.call("userDataStream.start", {"apiKey": TEST_HMAC_API_KEY})
        assert retired["status"] == 410


async def test_hmac_keys_cannot_log_on(sim: SimProcess) -> None:
    async with aiohttp.ClientSession() as session, await _connect(session, sim) as ws:
        refused = await Client(ws).call("session.logon", hmac_signed({}))
        assert refused["status"] == 400 and refused["error"]["code"] == -4056


async def test_user_data_after_logon_matches_the_order_response(clean_sim: SimProcess) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["SOLUSDC"]})
    _, asks = best(sim, "SOLUSDC")
    qty = Decimal(asks[0][1]) + Decimal("0.5")
    async with aiohttp.ClientSession() as session, await _connect(session, sim) as ws:
        client = Client(ws)
        await client.call("session.logon", ed_signed({}))
        subscribed = await client.call("userDataStream.subscribe")
        subscription = subscribed["result"]["subscriptionId"]
        again = await client.call("userDataStream.subscribe")
        assert again["error"]["code"] == -2035
        placed = await client.call(
            "order.place",
            {
                "symbol": "SOLUSDC",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "IOC",
                "quantity": f"{qty:.8f}",
                "price": asks[0][0],
                "newClientOrderId": "ws-user-1",
                "timestamp": int(time.time() * 1000),
            },
        )
        result = placed["result"]
        assert result["status"] == "EXPIRED"
        events = await client.wait_events(
            lambda ev: any(e["event"].get("e") == "outboundAccountPosition" for e in ev)
        )
        assert all(e["subscriptionId"] == subscription for e in events)
        reports = [e["event"] for e in events if e["event"]["e"] == "executionReport"]
        assert [r["x"] for r in reports] == ["NEW", "TRADE", "EXPIRED"]
        assert all(r["c"] == "ws-user-1" and r["i"] == result["orderId"] for r in reports)
        assert [r["t"] for r in reports if r["x"] == "TRADE"] == [
            f["tradeId"] for f in result["fills"]
        ]
        assert reports[-1]["X"] == "EXPIRED" and reports[-1]["z"] == result["executedQty"]
        position = next(e["event"] for e in events if e["event"]["e"] == "outboundAccountPosition")
        assert {b["a"] for b in position["B"]} == {"SOL", "USDC"}


async def test_subscribe_signature_without_logon_and_user_data_faults(
    clean_sim: SimProcess,
) -> None:
    sim = clean_sim
    sim.admin("POST", {"freeze": ["ETHUSDC"]})
    _, asks = best(sim, "ETHUSDC")

    def order() -> dict[str, Any]:
        return hmac_signed(
            {
                "symbol": "ETHUSDC",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "IOC",
                "quantity": "0.01",
                "price": asks[2][0],
            }
        )

    async with aiohttp.ClientSession() as session, await _connect(session, sim) as ws:
        client = Client(ws)
        subscribed = await client.call("userDataStream.subscribe.signature", hmac_signed({}))
        assert subscribed["status"] == 200
        sim.admin("POST", {"user_data_delay_ms": 400})
        sent = time.monotonic()
        placed = await client.call("order.place", order())
        answered = time.monotonic() - sent
        assert placed["result"]["status"] == "FILLED" and not client.events
        await client.wait_events(lambda ev: len(ev) >= 3)
        assert time.monotonic() - sent >= 0.4 > answered
        assert [e["event"]["x"] for e in client.events if e["event"]["e"] == "executionReport"] == [
            "NEW",
            "TRADE",
        ]
        client.events.clear()
        sim.admin("POST", {"user_data_delay_ms": 0, "drop_user_data": 2})
        await client.call("order.place", order())
        await client.wait_events(lambda ev: len(ev) >= 1, timeout=1)
        assert [e["event"]["e"] for e in client.events] == ["outboundAccountPosition"]


async def test_server_shutdown_event_then_close(sim: SimProcess) -> None:
    async with (
        aiohttp.ClientSession() as session,
        await _connect(session, sim) as ws,
        session.ws_connect(f"{sim.ws}/ws/btcusdc@bookTicker") as stream,
    ):
        sim.admin("POST", {"server_shutdown": True})
        seen = None
        for _ in range(50):
            message = await ws.receive(timeout=5)
            data = json.loads(message.data)
            if "event" in data:
                seen = data["event"]
                break
        assert seen is not None and seen["e"] == "serverShutdown"
        shutdown_on_stream = False
        for _ in range(500):
            message = await stream.receive(timeout=5)
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            if json.loads(message.data).get("e") == "serverShutdown":
                shutdown_on_stream = True
        assert shutdown_on_stream
        closing = await ws.receive(timeout=5)
        assert closing.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        )


pytestmark = pytest.mark.asyncio

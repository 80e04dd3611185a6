"""Sells in the query API over real loopback sockets against the real service and its
SQLite store (issue 12 review): a redeemed sell's invoice is listed in `/v1/redemptions` (by
client and time range, keyset pages) with its burns, lots and payout as the client received
it, its stored record reads redeemed with its fill rate and no stale reason; an open sell is
in `/v1/orders` and in its order detail; the OpenAPI document describes the new listing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from openapi_spec_validator import validate

from indexmaker.app.config import StoreConfig
from indexmaker.query.api import QueryApiConfig
from indexmaker.server import client as sdk

from .conftest import TEST_KEYS, sdk_fast_config, sdk_start_service

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclasses.dataclass
class Sold:
    base: str
    http: aiohttp.ClientSession
    address: str
    invoice: Any  # the RedemptionInvoice the client received for "rs-1"
    open_quantity: Decimal  # "rs-2", held back by its floor

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        async with self.http.get(self.base + path, params=params) as response:
            return response.status, await response.json()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sold(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sold]:
    config = dataclasses.replace(
        sdk_fast_config(),
        store=StoreConfig(Path(tmp_path_factory.mktemp("query-sells"))),
        api=QueryApiConfig(enable=True, host="127.0.0.1", port=0),
    )
    service, _ = await sdk_start_service(config)
    assert service.api is not None
    try:
        async with (
            asyncio.timeout(60),
            sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as me,
        ):
            await sdk.sim_deposit(me.url, me.address, Decimal(1000))
            assert (await me.new_order("SY100", "buy", Decimal(800), "rb-1")).accepted
            bought = (await me.wait_minted("rb-1", timeout=20)).filled_quantity
            half = (bought / 2).quantize(Decimal("1e-6"))
            answer = await me.new_order("SY100", "sell", half, "rs-1")
            assert answer.accepted, answer.reason
            invoice = await me.wait_redeemed("rs-1", timeout=30)
            # A floor no sale can meet: accepted, escrowed, and held open (SPEC §3 min_proceeds).
            rest = (bought / 4).quantize(Decimal("1e-6"))
            held = await me.new_order("SY100", "sell", rest, "rs-2", min_proceeds=Decimal(10**9))
            assert held.accepted, held.reason
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield Sold(service.api.url, http, me.address.lower(), invoice, rest)
    finally:
        await service.stop()


async def test_a_redeemed_sell_is_listed_with_burns_lots_and_payout(sold: Sold) -> None:
    status, page = await sold.get("/v1/redemptions", limit=1)
    assert status == 200 and page["next_cursor"] is None, page
    [item] = page["items"]
    sent = sold.invoice
    assert (item["client_order_id"], item["address"], item["symbol"]) == (
        "rs-1",
        sold.address,
        "SY100",
    )
    for name in ("quantity", "redeemed_quantity", "net_paid", "gross_proceeds", "vwap"):
        assert Decimal(item[name]) == getattr(sent, name), name
    assert Decimal(item["redeemed_quantity"]) > 0 and Decimal(item["net_paid"]) > 0
    assert [(b["payment_id"], Decimal(b["quantity"])) for b in item["burns"]] == [
        (b.payment_id, b.quantity) for b in sent.burns
    ]
    assert len(item["lots"]) == len(sent.lots) > 0
    mine = {"chain_id": 42161, "address": sold.address}
    status, by_client = await sold.get("/v1/redemptions", **mine)
    assert status == 200 and [i["client_order_id"] for i in by_client["items"]] == ["rs-1"]
    other = {"chain_id": 42161, "address": "0x" + "12" * 20}
    status, nobody = await sold.get("/v1/redemptions", **other)
    assert status == 200 and nobody["items"] == []
    at = item["redeemed_at"]
    status, after = await sold.get("/v1/redemptions", **{"from": at.replace("Z", "+00:00")})
    assert [i["client_order_id"] for i in after["items"]] == ["rs-1"]
    status, before = await sold.get("/v1/redemptions", to=at)
    assert status == 200 and before["items"] == []
    status, reversed_range = await sold.get("/v1/redemptions", **{"from": at, "to": at})
    assert status == 400 and reversed_range["error"].startswith("to: ")
    # The order's detail: its redemption invoice and its stored record, ended and paid.
    status, detail = await sold.get(f"/v1/orders/42161/{sold.address}/rs-1")
    assert status == 200 and detail["invoice"] is None  # no mint invoice: a sell
    assert detail["order"] is None or detail["order"]["status"] == "Paid"
    assert detail["redemption"] == item
    record = detail["record"]
    assert record["status"] == "redeemed" and record["reason"] is None
    assert Decimal(record["fill_rate"]) > 0
    assert Decimal(record["filled_quantity"]) == sent.redeemed_quantity
    assert Decimal(record["collateral_spent"]) == sent.net_paid


async def test_an_open_sell_is_listed_among_the_orders_and_found_in_detail(sold: Sold) -> None:
    status, orders = await sold.get("/v1/orders", address=sold.address, chain_id=42161)
    assert status == 200, orders
    [sell] = [o for o in orders["items"] if o["client_order_id"] == "rs-2"]
    assert sell["side"] == "sell" and Decimal(sell["amount"]) == sold.open_quantity
    assert sell["status"] in ("Escrowing", "Ready", "Engaged")
    for _ in range(10):  # bounded: the sell may move on (Escrowing → Ready) between asks
        status, now = await sold.get("/v1/orders", address=sold.address, chain_id=42161)
        [current] = [o["status"] for o in now["items"] if o["client_order_id"] == "rs-2"]
        status, same = await sold.get("/v1/orders", status=current)
        assert status == 200 and all(o["status"] == current for o in same["items"])
        if "rs-2" in [o["client_order_id"] for o in same["items"]]:
            break
    else:
        raise AssertionError("the status filter never listed the open sell rs-2")
    status, detail = await sold.get(f"/v1/orders/42161/{sold.address}/rs-2")
    order = detail["order"]
    assert status == 200 and detail["redemption"] is None
    assert {**order, "status": sell["status"]} == sell  # the same order (its status may move on)
    assert detail["record"]["side"] == "sell" and detail["record"]["status"] != "redeemed"


async def test_the_openapi_document_describes_redemption_invoices(sold: Sold) -> None:
    status, document = await sold.get("/openapi.json")
    assert status == 200
    validate(document)
    listing = document["paths"]["/v1/redemptions"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "chain_id", "address", "symbol", "from", "to", "limit", "cursor",
    }  # fmt: skip
    schemas = document["components"]["schemas"]
    invoice = schemas["RedemptionInvoice"]["properties"]
    assert {"burns", "lots", "net_paid", "payout_tx", "redeemed_at"} <= set(invoice)
    assert invoice["net_paid"]["type"] == "string"  # money is a decimal string
    assert "redemption" in schemas["OrderDetail"]["properties"]
    states = next(p for p in document["paths"]["/v1/orders"]["get"]["parameters"]
                  if p["name"] == "status")["schema"]["enum"]  # fmt: skip
    assert {"Ready", "Escrowing", "Paid", "Minted"} <= set(states)

"""The query API over real loopback sockets against the real service (engine, simulated
peers, SQLite store): what it lists is what the engine and the store hold, pages join up
without loss or repeat, filters narrow, bad parameters are 400s naming the parameter, and
/openapi.json is a valid OpenAPI 3.1 document describing every route."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from openapi_spec_validator import validate

from indexmaker.app.config import StoreConfig
from indexmaker.app.service import Service
from indexmaker.core.money import exact_add
from indexmaker.query.api import QueryApiConfig
from indexmaker.server import client as sdk
from indexmaker.server.signing import Signer

from .conftest import TEST_KEYS, SentLog, sdk_fast_config, sdk_start_service

pytestmark = pytest.mark.asyncio(loop_scope="module")


def address_of(key: str) -> str:
    return Signer(key).address.lower()


@dataclasses.dataclass
class World:
    service: Service
    sent: SentLog
    base: str
    http: aiohttp.ClientSession
    minted: dict[str, Any]  # client_order_id -> the invoice the client received
    waiting: str  # address of a client whose order waits for collateral
    started: datetime

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        async with self.http.get(self.base + path, params=params) as response:
            assert response.content_type == "application/json"
            return response.status, await response.json()

    async def all_pages(self, path: str, limit: int, **params: Any) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(100):  # bounded
            extra = {} if cursor is None else {"cursor": cursor}
            status, body = await self.get(path, limit=limit, **params, **extra)
            assert status == 200, body
            assert len(body["items"]) <= limit
            items += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("pagination never ended")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data = tmp_path_factory.mktemp("query-api")
    config = dataclasses.replace(
        sdk_fast_config(),
        store=StoreConfig(Path(data)),
        api=QueryApiConfig(enable=True, host="127.0.0.1", port=0),
    )
    started = datetime.now(UTC)
    service, sent = await sdk_start_service(config)
    assert service.api is not None and service.api.url.startswith("http://127.0.0.1:")
    minted: dict[str, Any] = {}
    try:
        async with asyncio.timeout(40):
            for key, orders in ((TEST_KEYS[0], ("qa-1", "qa-2")), (TEST_KEYS[1], ("qb-1",))):
                async with sdk.IndexMakerClient(service.server.url, key) as client:
                    await sdk.sim_deposit(client.url, client.address, Decimal(600) * len(orders))
                    for order_id in orders:
                        assert await client.new_order("SY100", "buy", Decimal(500), order_id)
                        minted[order_id] = await client.wait_minted(order_id, timeout=20)
            async with sdk.IndexMakerClient(service.server.url, TEST_KEYS[2]) as poor:
                # No deposit: the order is accepted and waits for collateral.
                assert (await poor.new_order("SY100", "buy", Decimal(200), "qc-1")).accepted
                waiting = poor.address.lower()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield World(service, sent, service.api.url, http, minted, waiting, started)
    finally:
        await service.stop()


async def test_openapi_document_is_valid_and_names_every_route(world: World) -> None:
    status, document = await world.get("/openapi.json")
    assert status == 200
    validate(document)  # openapi-spec-validator: raises on an invalid OpenAPI 3.1 document
    assert document["openapi"] == "3.1.0"
    for path in ("/v1/collateral", "/v1/inventory/lots", "/v1/orders", "/v1/batches",
                 "/v1/exchange-orders", "/v1/invoices", "/health"):  # fmt: skip
        assert path in document["paths"], path
    invoices = document["paths"]["/v1/invoices"]["get"]
    assert {p["name"] for p in invoices["parameters"]} >= {"from", "to", "limit", "cursor"}
    money = document["components"]["schemas"]["Invoice"]["properties"]["amount_paid"]
    assert money["type"] == "string"  # money is a decimal string, never a JSON number
    async with world.http.get(world.base + "/docs") as page:
        assert page.status == 200 and "/openapi.json" in await page.text()
    async with world.http.get(world.base + "/docs/static/swagger-ui-bundle.js") as script:
        assert script.status == 200 and len(await script.read()) > 100_000


async def test_invoices_match_what_clients_received_and_page_by_time(world: World) -> None:
    items = await world.all_pages("/v1/invoices", limit=2)
    assert [i["client_order_id"] for i in items] == ["qa-1", "qa-2", "qb-1"]  # mint order
    for item in items:
        sent = world.minted[item["client_order_id"]]
        assert Decimal(item["amount_paid"]) == sent.amount_paid
        assert Decimal(item["filled_quantity"]) == sent.filled_quantity
        assert item["payment_id"] == sent.payment_id
        assert len(item["lots"]) == len(sent.lots)
    times = [datetime.fromisoformat(i["minted_at"]) for i in items]
    assert times == sorted(times) and times[0] >= world.started
    # One client only; then a time window that keeps only the last mint.
    chain, address = 42161, address_of(TEST_KEYS[0])
    mine = await world.all_pages("/v1/invoices", limit=1, chain_id=chain, address=address)
    assert [i["client_order_id"] for i in mine] == ["qa-1", "qa-2"]
    late = await world.all_pages("/v1/invoices", limit=5, **{"from": items[2]["minted_at"]})
    assert [i["client_order_id"] for i in late] == ["qb-1"]
    early = await world.all_pages("/v1/invoices", limit=5, to=items[1]["minted_at"])
    assert [i["client_order_id"] for i in early] == ["qa-1"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await world.all_pages("/v1/invoices", limit=5, **{"from": future}) == []


async def test_collateral_positions_balance_and_one_client_in_detail(world: World) -> None:
    positions = await world.all_pages("/v1/collateral", limit=1)
    by_address = {p["address"]: p for p in positions}
    a = address_of(TEST_KEYS[0])
    assert Decimal(by_address[a]["deposited"]) == Decimal(1200)
    spent = sum(world.minted[o].amount_paid for o in ("qa-1", "qa-2"))
    assert Decimal(by_address[a]["spent"]) == spent
    status, detail = await world.get(f"/v1/collateral/42161/{a.upper().replace('0X', '0x')}")
    assert status == 200 and detail["address"] == a
    assert sum(Decimal(lot["gross"]) for lot in detail["lots"] if lot["seq_num"] >= 0) == 1200
    status, missing = await world.get("/v1/collateral/42161/0x" + "12" * 20)
    assert status == 404 and "not found" in missing["error"]


async def test_orders_show_the_waiting_update_and_the_minted_ones_by_invoice(world: World) -> None:
    [waiting] = await world.all_pages("/v1/orders", limit=10, address=world.waiting)
    assert waiting["client_order_id"] == "qc-1" and waiting["status"] in (
        "Open",
        "ManageCollateral",
    )
    assert await world.all_pages("/v1/orders", limit=10, status="Minted") == []
    status, detail = await world.get(f"/v1/orders/42161/{world.waiting}/qc-1")
    assert status == 200 and detail["order"]["amount"] == "200" and detail["invoice"] is None
    a = address_of(TEST_KEYS[0])
    status, detail = await world.get(f"/v1/orders/42161/{a}/qa-2")
    assert status == 200 and detail["order"] is None
    assert detail["invoice"]["payment_id"] == world.minted["qa-2"].payment_id
    status, _ = await world.get(f"/v1/orders/42161/{a}/nope")
    assert status == 404


async def test_inventory_lots_and_exchange_orders_agree(world: World) -> None:
    orders = await world.all_pages("/v1/exchange-orders", limit=7)
    ids = [o["order_id"] for o in orders]
    assert len(ids) == len(set(ids)) > 0  # pages neither lose nor repeat
    assert all(o["status"] == "filled" for o in orders if Decimal(o["filled"]) > 0)
    filled = await world.all_pages("/v1/exchange-orders", limit=50, status="filled")
    assert {o["order_id"] for o in filled} == {
        o["order_id"] for o in orders if o["status"] == "filled"
    }
    lots = await world.all_pages("/v1/inventory/lots", limit=13)
    assert [lot["lot_id"] for lot in lots] == sorted(lot["lot_id"] for lot in lots)
    pair = lots[0]["pair"]
    [summary] = await world.all_pages("/v1/inventory", limit=5, pair=pair)
    of_pair = [lot for lot in lots if lot["pair"] == pair]
    assert summary["lots"] == len(of_pair)
    assert Decimal(summary["quantity"]) == sum(Decimal(lot["quantity"]) for lot in of_pair)
    # Lots still held were assigned only to the orders that minted, never beyond the lot.
    for lot in lots:
        assert {a["client_order_id"] for a in lot["assignments"]} <= set(world.minted)
        assigned = exact_add(*(Decimal(a["quantity"]) for a in lot["assignments"]))
        assert assigned == Decimal(lot["assigned"]) <= Decimal(lot["quantity"])
        assert exact_add(Decimal(lot["free"]), assigned) <= Decimal(lot["quantity"])
    status, batches = await world.get("/v1/batches")
    assert status == 200 and batches["next_cursor"] is None  # nothing in flight now


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/v1/orders", {"limit": "0"}, "limit: must be an integer from 1 to 500"),
        ("/v1/orders", {"limit": "x"}, "limit: must be an integer"),
        ("/v1/orders", {"limit": "501"}, "limit: must be an integer from 1 to 500"),
        ("/v1/orders", {"cursor": "!!!"}, "cursor: not a cursor"),
        ("/v1/orders", {"cursor": "WyJhIl0"}, "cursor: not a cursor of this listing"),
        ("/v1/orders", {"status": "Done"}, "status: expected one of"),
        ("/v1/orders", {"stauts": "Open"}, "stauts: unknown parameter"),
        ("/v1/orders", {"address": "0x12"}, "address: expected 0x and 40 hex digits"),
        ("/v1/invoices", {"from": "yesterday"}, "from: expected an ISO 8601 time"),
        ("/v1/invoices", {"from": "2026-11-29T10:00:00"}, "from: give a timezone"),
        ("/v1/invoices", {"chain_id": "42161"}, "chain_id: give chain_id and address"),
        ("/v1/exchange-orders", {"batch_id": "-1"}, "batch_id: must be an integer from 1"),
        ("/v1/inventory/lots", {"free_only": "yes"}, "free_only: expected true or false"),
        ("/v1/collateral/abc/0x" + "12" * 20, {}, "chain_id: must be an integer"),
    ],
)
async def test_bad_parameters_are_400s_naming_the_parameter(
    world: World, path: str, params: dict[str, str], message: str
) -> None:
    status, body = await world.get(path, **params)
    assert status == 400, body
    assert body["error"].startswith(message), body


async def test_a_reversed_or_empty_time_range_is_a_400_on_every_listing(world: World) -> None:
    _, document = await world.get("/openapi.json")
    ranged = [
        path
        for path, item in document["paths"].items()
        if {"from", "to"} <= {p["name"] for p in item["get"]["parameters"]}
    ]
    assert {"/v1/invoices", "/v1/order-history", "/v1/batch-history"} <= set(ranged)
    for path in ranged:
        for until in ("2020-01-01T00:00:00Z", "2030-01-01T00:00:00+00:00"):
            status, body = await world.get(path, **{"from": "2030-01-01T00:00:00Z", "to": until})
            assert status == 400, (path, body)
            assert body["error"].startswith("to: 20") and "is not after from 2030" in body["error"]
        status, _ = await world.get(path, **{"from": "2020-01-01T00:00:00Z", "to": "2030-01-01Z"})
        assert status in (200, 400)  # a date without a time may be refused; never a 500


async def test_invoice_items_carry_the_wire_body_and_its_hash_terms(world: World) -> None:
    from indexmaker.core.invoice_terms import TERM_FIELDS, terms_hash

    items = await world.all_pages("/v1/invoices", limit=5)
    for item in items:
        sent = world.minted[item["client_order_id"]]
        assert item["body"] == sent.body  # exactly what the client was sent
        assert {*TERM_FIELDS, "timestamp", "position"} <= set(item["body"])
        assert item["basket_version"] == sent.basket_version == 1
        # The hash of the terms, recomputed from the body alone; the simulated chain has no
        # mint transaction, said as null.
        assert item["invoice_hash"] == item["body"]["invoice_hash"] == terms_hash(item["body"])
        assert item["mint_tx_hash"] is None and "mint_tx_hash" not in item["body"]


async def test_health_and_unknown_paths_answer_json(world: World) -> None:
    status, health = await world.get("/health")
    # On a loaded machine the loop may lag: then 503 with the same body naming why.
    assert (status == 200) == (health["status"] == "ok") == (health["problems"] == []), health
    assert health["engine_alive"] is True
    assert health["store"] == "sqlite"
    assert health["journal_seq"] > 0
    status, body = await world.get("/v1/nothing")
    assert status == 404 and "/v1/nothing" in body["error"]
    async with world.http.post(world.base + "/v1/orders") as response:
        assert response.status == 405  # read-only

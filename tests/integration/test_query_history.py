"""The query API's durable listings over real loopback sockets against the real service and
its store (SQLite and PostgreSQL): orders and batches the engine has finished with, and so
forgotten, are listed, filtered and paged from the store, also after a restart."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from indexmaker.app.config import ServiceConfig, StoreConfig
from indexmaker.app.service import Service
from indexmaker.query.api import QueryApiConfig
from indexmaker.server import client as sdk

from .conftest import TEST_KEYS, sdk_fast_config, sdk_start_service


async def _get(api: str, path: str, **params: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(api + path, params=params) as response,
    ):
        return response.status, await response.json()


async def _pages(api: str, path: str, limit: int, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(50):  # bounded
        extra = {} if cursor is None else {"cursor": cursor}
        status, body = await _get(api, path, limit=limit, **params, **extra)
        assert status == 200, body
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination never ended")


async def _started(config: ServiceConfig) -> tuple[Service, str]:
    service, _ = await sdk_start_service(config)
    assert service.api is not None
    return service, service.api.url


async def test_finished_orders_and_batches_are_listed_from_the_store_after_a_restart(
    tmp_path: Path, store_url: str | None
) -> None:
    config = dataclasses.replace(
        sdk_fast_config(),
        store=StoreConfig(tmp_path / "data", url=store_url),
        api=QueryApiConfig(enable=True, host="127.0.0.1", port=0),
    )
    service, api = await _started(config)
    try:
        async with sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as client:
            await sdk.sim_deposit(client.url, client.address, Decimal(1200))
            minted = {}
            for order_id in ("h-1", "h-2"):
                assert await client.new_order("SY100", "buy", Decimal(500), order_id)
                minted[order_id] = await client.wait_minted(order_id, timeout=20)
            refused = await client.new_order("SY100", "buy", Decimal(500), "h-1")  # a repeat
            assert not refused.accepted
            me = client.address.lower()
        # The engine has finished with them: its own listing no longer has them.
        status, live = await _get(api, "/v1/orders", address=me, chain_id=42161)
        assert status == 200 and live["items"] == []
    finally:
        await service.stop()

    service, api = await _started(config)  # the same store, a new process state
    try:
        orders = await _pages(api, "/v1/order-history", 1, chain_id=42161, address=me)
        assert [o["client_order_id"] for o in orders] == ["h-1", "h-2"]
        for order in orders:
            invoice = minted[order["client_order_id"]]
            assert order["status"] == "minted" and order["payment_id"] == invoice.payment_id
            assert Decimal(order["filled_quantity"]) == invoice.filled_quantity
            assert order["amount"] == "500" and order["side"] == "buy"
        assert await _pages(api, "/v1/order-history", 5, status="accepted") == []
        assert await _pages(api, "/v1/order-history", 5, **{"from": orders[1]["received_at"]}) == [
            orders[1]
        ]
        status, detail = await _get(api, f"/v1/orders/42161/{me}/h-1")
        assert status == 200 and detail["order"] is None and detail["record"] == orders[0]
        batches = await _pages(api, "/v1/batch-history", 1)
        assert len(batches) >= 2 and {b["status"] for b in batches} == {"completed"}
        assert all(b["side"] == "buy" and b["completed_at"] for b in batches)
        assert [b["batch_id"] for b in batches] == sorted(b["batch_id"] for b in batches)
        assert await _pages(api, "/v1/batch-history", 5, status="created") == []
        status, error = await _get(api, "/v1/order-history", status="lost")
        assert status == 400 and error["error"].startswith("status:")
        for listing in ("/v1/order-history", "/v1/batch-history"):  # forged past int64: not a 500
            for forged in ([2**63], [-(2**63) - 1]):
                raw = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
                status, error = await _get(api, listing, cursor=raw)
                assert status == 400 and error["error"].startswith("cursor:"), (listing, error)
    finally:
        await service.stop()


async def test_an_order_rejected_after_its_acceptance_is_listed_rejected_with_the_reason(
    tmp_path: Path, store_url: str | None
) -> None:
    """Review (issue 12): the rejection that follows an acceptance (a buy whose collateral never
    became ready, a sell whose index tokens never reached custody) left the order `accepted`
    in /v1/order-history."""
    base = sdk_fast_config()
    config = dataclasses.replace(
        base,
        solver=dataclasses.replace(base.solver, collateral_timeout=timedelta(seconds=1)),
        store=StoreConfig(tmp_path / "data", url=store_url),
        api=QueryApiConfig(enable=True, host="127.0.0.1", port=0),
    )
    service, api = await _started(config)
    try:
        async with (
            sdk.IndexMakerClient(service.server.url, TEST_KEYS[1]) as buyer,
            sdk.IndexMakerClient(service.server.url, TEST_KEYS[2]) as seller,
        ):
            assert (await buyer.new_order("SY100", "buy", Decimal(50), "late-buy")).accepted
            # A repeated id is refused on its own; the first order's row is not that refusal.
            assert not (await buyer.new_order("SY100", "buy", Decimal(50), "late-buy")).accepted
            sold = await seller.new_order("SY100", "sell", Decimal("0.01"), "late-sell")
            assert sold.accepted, sold.reason
            with pytest.raises(sdk.RequestRejected, match="collateral not ready"):
                await buyer.wait_minted("late-buy", timeout=15)
            with pytest.raises(sdk.RequestRejected, match="not moved into custody"):
                await seller.wait_redeemed("late-sell", timeout=15)
        orders = await _pages(api, "/v1/order-history", 10)
    finally:
        await service.stop()
    by_id = {o["client_order_id"]: o for o in orders}
    assert set(by_id) == {"late-buy", "late-sell"}
    assert by_id["late-buy"]["status"] == "rejected" and by_id["late-buy"]["side"] == "buy"
    assert by_id["late-buy"]["reason"].startswith("collateral not ready within")
    assert by_id["late-sell"]["status"] == "rejected" and by_id["late-sell"]["side"] == "sell"
    assert "not moved into custody" in by_id["late-sell"]["reason"]
    assert by_id["late-sell"]["updated_at"] > by_id["late-sell"]["received_at"]

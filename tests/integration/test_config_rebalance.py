"""A curator update from the settings file reaches the running service (issue 12): the
service over real loopback sockets with the simulated venue; every wait bounded."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp

from indexmaker.app.config import StoreConfig, load_config
from indexmaker.app.config_rebalance import already_proposed, feed_rebalances
from indexmaker.app.service import Service
from indexmaker.core.events import Command, RebalanceReport
from indexmaker.query.api import QueryApiConfig
from indexmaker.server import client as sdk

from .conftest import TEST_KEYS, sdk_fast_config

SETTINGS = """indexes = ["SYAI"]
[[rebalance]]
index = "SYAI"
weights = { TAOUSDC = 1, NEARUSDC = 1, ICPUSDC = 1 }
"""


def configured(tmp_path: Path, data_dir: Path | None = None) -> Service:
    path = tmp_path / "c.toml"
    path.write_text(SETTINGS)
    from_file = load_config(path)
    base = sdk_fast_config()
    solver = replace(base.solver, rebalance_interval=timedelta(milliseconds=200))
    return Service(
        replace(
            base,
            indexes=from_file.indexes,
            rebalance=from_file.rebalance,
            solver=solver,
            store=StoreConfig(data_dir) if data_dir is not None else base.store,
            api=QueryApiConfig(enable=True, host="127.0.0.1", port=0),
        )
    )


class Reports(list[RebalanceReport]):
    def __call__(self, command: Command) -> None:
        if isinstance(command, RebalanceReport):
            self.append(command)

    async def until(self, kind: str, seconds: float) -> RebalanceReport:
        async with asyncio.timeout(seconds):
            while not any(r.kind == kind for r in self):
                await asyncio.sleep(0.05)
        return next(r for r in self if r.kind == kind)


async def test_a_configured_rebalance_is_carried_out_to_its_end(tmp_path: Path) -> None:
    service = configured(tmp_path)
    [proposed] = service.config.rebalance
    service.config = replace(service.config, rebalance=())  # fed below, after the buy
    reports = Reports()
    service.runtime.observers.append(reports)
    await service.start()
    try:
        async with asyncio.timeout(20), sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as c:
            await sdk.sim_deposit(c.url, c.address, Decimal(3000))
            await c.new_order("SYAI", "buy", Decimal(3000), "rb-1")
            await c.wait_minted("rb-1", timeout=15)
        await asyncio.wait_for(feed_rebalances(service.runtime, (proposed,)), 10)
        end = await reports.until("completed", 20)
        assert service.api is not None
        url = f"{service.api.url}/v1/rebalances"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            listed = (await response.json())["items"]
    finally:
        await service.stop()
    assert proposed.proposal_id.startswith("config-SYAI-")
    assert reports[0].kind == "started" and reports[0].version == 2
    assert end.version == 2 and end.round >= 1 and end.units > 0
    assert end.traded > 0 and end.orders > 0 and end.accuracy > Decimal("0.99")
    kept = {line.instrument.pair for line in end.assets if line.target > 0}
    assert kept == {"TAOUSDC", "NEARUSDC", "ICPUSDC"}
    # Operators see it in the query API: done, the same rounds and figures as the report.
    [shown] = listed
    assert (shown["symbol"], shown["version"], shown["proposal_id"]) == (
        "SYAI",
        2,
        proposed.proposal_id,
    )
    assert shown["done"] is True and shown["rounds"] == end.round
    assert shown["exchange_orders"] == end.orders
    assert {a["pair"] for a in shown["assets"] if Decimal(a["target_quantity"]) > 0} == kept
    by_pair = {line.instrument.pair: line for line in end.assets}
    assert all(Decimal(a["sold"]) == by_pair[a["pair"]].sold for a in shown["assets"])
    # The 23 assets that left the basket were sold (a leg below the venue minimum is dust).
    assert sum(1 for line in end.assets if line.target == 0 and line.sold > 0) >= 20


async def test_a_restarted_serve_does_not_start_it_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = configured(tmp_path, data)
    reports = Reports()
    first.runtime.observers.append(reports)
    await first.start()
    try:
        await reports.until("started", 15)
    finally:
        await first.stop()
    [proposal] = first.config.rebalance
    again = configured(tmp_path, data)
    later = Reports()
    again.runtime.observers.append(later)
    await again.start()
    try:
        feeder = again._rebalances
        assert feeder is not None
        await asyncio.wait_for(asyncio.shield(feeder), 10)
        await asyncio.sleep(0.3)  # a proposal put in would have been reported by now
        await again.runtime.quiet()
        assert already_proposed(again.engine, proposal)
        assert again.engine.baskets[proposal.symbol].version == 2
    finally:
        await again.stop()
    assert not [r for r in later if r.kind == "started"]

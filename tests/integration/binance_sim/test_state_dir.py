"""`--state-dir`: the simulator `serve` starts keeps its accounts, orders and trades under the
service's data directory, so a restarted simulator (after SIGTERM, and after SIGKILL from its
last periodic save) is the same venue: same balances, same open orders, ids that go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from indexmaker.app.binance_wiring import ExchangeSimProcess, binance_venue, exchange_sim_state_args

from .conftest import INDEXMAKER, best, rest

ARGS = ["--symbols", "ETHUSDC", "--seed", "9"]


def start(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ExchangeSimProcess:
    """The simulator as `serve` starts it for `data_dir` (no real venue, no external sim)."""
    for name in ("BINANCE_REST_URL", "EXCHANGE_SIM_URL"):
        monkeypatch.delenv(name, raising=False)
    _, sim = binance_venue(["ETHUSDC"], [*ARGS, *exchange_sim_state_args(data_dir)])
    assert sim is not None
    return sim


def account(sim: Any) -> dict[str, Any]:
    """Balances, open orders and trades of the main account, as the venue answers them."""
    _, _, body = rest(sim, "GET", "/api/v3/account")
    _, _, orders = rest(sim, "GET", "/api/v3/openOrders", symbol="ETHUSDC")
    _, _, trades = rest(sim, "GET", "/api/v3/myTrades", symbol="ETHUSDC")
    return {
        "balances": {b["asset"]: (b["free"], b["locked"]) for b in body["balances"]},
        "open": sorted(
            (o["orderId"], o["clientOrderId"], o["price"], o["origQty"]) for o in orders
        ),
        "trades": [(t["id"], t["orderId"], t["price"], t["qty"], t["commission"]) for t in trades],
    }


def saved_order_ids(state_dir: Path) -> int:
    try:
        state = json.loads((state_dir / "exchange-sim-state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return int(state["order_ids"].get("ETHUSDC", 0))


def test_a_restarted_simulator_is_the_same_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    state_dir = data_dir / "binance" / "exchange-sim"
    sim = start(data_dir, monkeypatch)
    try:
        fresh = account(sim)
        bids, _ = best(sim, "ETHUSDC")
        status, _, bought = rest(
            sim, "POST", "/api/v3/order", symbol="ETHUSDC", side="BUY", type="MARKET",
            quantity="0.05", newClientOrderId="state-buy",
        )  # fmt: skip
        assert status == 200 and bought["status"] == "FILLED"
        status, _, resting = rest(
            sim, "POST", "/api/v3/order", symbol="ETHUSDC", side="BUY", type="LIMIT",
            timeInForce="GTC", price=bids[-1][0], quantity="0.02", newClientOrderId="state-rest",
        )  # fmt: skip
        assert status == 200 and resting["status"] == "NEW"
        before = account(sim)
        assert before != fresh and len(before["open"]) == 1 and before["trades"]
    finally:
        sim.stop()  # SIGTERM: saved at shutdown
    assert (state_dir / "exchange-sim-state.json").is_file()

    sim = start(data_dir, monkeypatch)
    try:
        assert account(sim) == before
        # the order rests again: it can be cancelled, and the next order id goes on
        status, _, cancelled = rest(
            sim, "DELETE", "/api/v3/order", symbol="ETHUSDC", origClientOrderId="state-rest"
        )
        assert status == 200 and cancelled["status"] == "CANCELED"
        status, _, sold = rest(
            sim, "POST", "/api/v3/order", symbol="ETHUSDC", side="SELL", type="MARKET",
            quantity="0.01", newClientOrderId="state-sell",
        )  # fmt: skip
        assert status == 200 and sold["orderId"] > resting["orderId"]
        after = account(sim)
        deadline = time.monotonic() + 10  # the periodic save (every second while changed)
        while saved_order_ids(state_dir) < sold["orderId"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert saved_order_ids(state_dir) == sold["orderId"]
        os.kill(sim.process.pid, signal.SIGKILL)  # no shutdown save
        sim.process.wait(timeout=10)
    finally:
        sim.stop()

    sim = start(data_dir, monkeypatch)
    try:
        assert account(sim) == after
        assert after["open"] == [] and after["balances"] != before["balances"]
    finally:
        sim.stop()


def test_an_unreadable_state_file_is_refused_with_status_2(tmp_path: Path) -> None:
    (tmp_path / "exchange-sim-state.json").write_text('{"format": 1, "accounts": [')
    result = subprocess.run(
        [INDEXMAKER, "exchange-sim", "--port", "0", *ARGS, "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--state-dir:" in result.stderr and "unreadable" in result.stderr

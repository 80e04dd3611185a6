"""`--state-dir`: the simulator `serve` starts keeps its accounts, orders and trades under the
service's data directory, so a restarted simulator (after SIGTERM, and after SIGKILL from its
last periodic save) is the same venue: same balances, same open orders, ids that go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from decimal import Decimal
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


def kill_once_saved(sim: Any, saved: Callable[[], bool]) -> None:
    """SIGKILL the simulator (no shutdown save) once its periodic save (every second while
    something changed) shows `saved`, waiting 10 s at most."""
    deadline = time.monotonic() + 10
    while not saved() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(sim.process.pid, signal.SIGKILL)
    sim.process.wait(timeout=10)


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
        kill_once_saved(sim, lambda: saved_order_ids(state_dir) >= sold["orderId"])
        assert saved_order_ids(state_dir) == sold["orderId"]
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


def _withdraw(sim: Any, client_id: str) -> dict[str, Any]:
    status, _, answer = rest(
        sim, "POST", "/sapi/v1/capital/withdraw/apply", withdrawOrderId=client_id, coin="USDC",
        network="BASE", address="0x" + "ab" * 20, amount="100",
    )  # fmt: skip
    assert status == 200, answer
    return dict(answer)


def _usdc(sim: Any) -> str:
    return str(account(sim)["balances"]["USDC"][0])


def _saved_withdrawals(state_dir: Path) -> set[str]:
    try:
        state = json.loads((state_dir / "exchange-sim-state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return set()
    rows = state.get("wallet", {}).get("transfers", [])
    return {row["client_id"] for _, row in rows if row["kind"] == "withdraw"}


def test_a_restarted_simulator_answers_a_known_withdraw_order_id_with_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wallet's history is in the state file: a withdrawOrderId taken before a restart
    (SIGTERM, then SIGKILL after the periodic save) is answered with that withdrawal, and no
    second one is debited or listed."""
    data_dir = tmp_path / "data"
    state_dir = data_dir / "binance" / "exchange-sim"
    sim = start(data_dir, monkeypatch)
    try:
        first = _withdraw(sim, "wd-1")
        after_first = _usdc(sim)
    finally:
        sim.stop()  # SIGTERM: saved at shutdown

    sim = start(data_dir, monkeypatch)
    try:
        assert _withdraw(sim, "wd-1") == first  # not a second withdrawal
        assert _usdc(sim) == after_first
        second = _withdraw(sim, "wd-2")  # a new id is a new withdrawal, with a new id
        assert second["id"] != first["id"]
        after_second = _usdc(sim)
        assert Decimal(after_first) - Decimal(after_second) == Decimal("100.1")
        kill_once_saved(sim, lambda: "wd-2" in _saved_withdrawals(state_dir))
        assert _saved_withdrawals(state_dir) == {"wd-1", "wd-2"}
    finally:
        sim.stop()

    sim = start(data_dir, monkeypatch)
    try:
        assert _withdraw(sim, "wd-2") == second
        assert _withdraw(sim, "wd-1") == first
        assert _usdc(sim) == after_second
        _, _, history = rest(sim, "GET", "/sapi/v1/capital/withdraw/history", coin="USDC")
        assert sorted(h["withdrawOrderId"] for h in history) == ["wd-1", "wd-2"]
        assert {h["id"] for h in history} == {first["id"], second["id"]}
        assert all(h["status"] == 6 for h in history)  # completed before or after the restart
    finally:
        sim.stop()

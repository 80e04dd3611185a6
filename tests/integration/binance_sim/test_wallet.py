"""Wallet (SAPI) endpoints: deposit address per coin and network, deposits credited through
statuses 0 → 6 → 1, withdrawals with withdrawOrderId idempotency and fees."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal

from .conftest import SimProcess, balance, rest


def _deposit(sim: SimProcess, **body: object) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{sim.url}/sim/deposit", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_deposit_address_per_coin_and_network(sim: SimProcess) -> None:
    _, _, base = rest(sim, "GET", "/sapi/v1/capital/deposit/address", coin="USDC")
    _, _, arbitrum = rest(
        sim, "GET", "/sapi/v1/capital/deposit/address", coin="USDC", network="ARBITRUM"
    )
    _, _, again = rest(sim, "GET", "/sapi/v1/capital/deposit/address", coin="USDC", network="BASE")
    assert base["address"] == again["address"] != arbitrum["address"]
    assert base["address"].startswith("0x") and len(base["address"]) == 42
    _, _, other = rest(sim, "GET", "/sapi/v1/capital/deposit/address", "second", coin="USDC")
    assert other["address"] != base["address"]
    status, _, error = rest(
        sim, "GET", "/sapi/v1/capital/deposit/address", coin="USDC", network="MOON"
    )
    assert status == 400 and "MOON" in error["msg"]
    _, _, coins = rest(sim, "GET", "/sapi/v1/capital/config/getall")
    usdc = next(c for c in coins if c["coin"] == "USDC")
    assert [n["network"] for n in usdc["networkList"] if n["isDefault"]] == ["BASE"]


def test_deposit_is_credited_then_final(sim: SimProcess) -> None:
    before = balance(sim, "USDC", "second")[0]
    status, answer = _deposit(sim, account="second", coin="USDC", amount="1234.5")
    assert status == 200
    _, _, history = rest(sim, "GET", "/sapi/v1/capital/deposit/hisrec", "second", coin="USDC")
    assert history[0]["status"] == 0 and history[0]["txId"] == answer["txId"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _, _, history = rest(sim, "GET", "/sapi/v1/capital/deposit/hisrec", "second", coin="USDC")
        if history[0]["status"] == 1:
            break
        time.sleep(0.1)
    assert history[0]["status"] == 1 and history[0]["confirmTimes"] == "12/12"
    assert balance(sim, "USDC", "second")[0] == before + Decimal("1234.5")
    status, refused = _deposit(sim, coin="USDC", amount="-1")
    assert status == 400 and refused["error"].startswith("amount:")


def test_withdraw_is_idempotent_by_withdraw_order_id(sim: SimProcess) -> None:
    before = balance(sim, "USDC")[0]
    args = {"coin": "USDC", "network": "BASE", "address": "0x" + "ab" * 20, "amount": "100"}
    _, _, first = rest(
        sim, "POST", "/sapi/v1/capital/withdraw/apply", withdrawOrderId="w-1", **args
    )
    _, _, second = rest(
        sim, "POST", "/sapi/v1/capital/withdraw/apply", withdrawOrderId="w-1", **args
    )
    assert first == second and "id" in first
    assert balance(sim, "USDC")[0] == before - Decimal("100.1")  # amount + the network fee, once
    _, _, history = rest(sim, "GET", "/sapi/v1/capital/withdraw/history", withdrawOrderId="w-1")
    assert len(history) == 1 and history[0]["id"] == first["id"]
    assert history[0]["status"] in (4, 6) and history[0]["transactionFee"] == "0.10000000"
    status, _, error = rest(
        sim,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        addressTag="7",
        withdrawOrderId="w-2",
        **args,
    )
    assert (status, error["code"]) == (400, -4106)
    status, _, error = rest(
        sim, "POST", "/sapi/v1/capital/withdraw/apply", **{**args, "amount": "999999999"}
    )
    assert error["code"] == -4026

"""The exchange simulator as a real subprocess on a free loopback port, and a local order book
kept by Binance's documented snapshot + diff procedure (web-socket-streams.md)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from indexmaker.app.binance_wiring import ExchangeSimProcess

SYMBOLS = "BTCUSDC,ETHUSDC,SOLUSDC,PEPEUSDC"
INDEXMAKER = str(Path(sys.executable).with_name("indexmaker"))


class SimProcess(ExchangeSimProcess):
    """`indexmaker exchange-sim --port 0 ...` (the service's own launcher), stopped by PID."""

    def __init__(self, *args: str) -> None:
        super().__init__(*args)
        self.ws = self.url.replace("http://", "ws://")


@pytest.fixture(scope="package")
def sim() -> Iterator[SimProcess]:
    process = SimProcess("--symbols", SYMBOLS)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def clean_sim(sim: SimProcess) -> Iterator[SimProcess]:
    sim.admin("DELETE")
    yield sim
    sim.admin("DELETE")


class LocalBook:
    """Binance's documented local book: snapshot, then diffs with the U/u rules."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.last_id = 0
        self.gaps = 0

    def snapshot(self, depth: dict[str, Any]) -> None:
        self.bids = {Decimal(p): Decimal(q) for p, q in depth["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in depth["asks"]}
        self.last_id = depth["lastUpdateId"]

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply one depthUpdate; False on a gap (the book must be re-synchronised)."""
        if event["u"] <= self.last_id:
            return True
        if event["U"] > self.last_id + 1:
            self.gaps += 1
            return False
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)
        self.last_id = event["u"]
        return True

    def top(self, n: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks


def levels(depth: dict[str, Any], n: int) -> tuple[list[tuple[Decimal, Decimal]], ...]:
    return (
        [(Decimal(p), Decimal(q)) for p, q in depth["bids"][:n]],
        [(Decimal(p), Decimal(q)) for p, q in depth["asks"][:n]],
    )


@contextlib.contextmanager
def started(*args: str) -> Iterator[SimProcess]:
    process = SimProcess(*args)
    try:
        yield process
    finally:
        process.stop()


KEYS = {
    "main": (
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    ),
    "second": (
        "imSimHmacTestKeyOfTheSecondAccount000000000000000000000000000002",
        "imSimHmacTestSecretOfTheSecondAccount00000000000000000000000002",
    ),
}


def rest(
    sim: SimProcess,
    method: str,
    path: str,
    account: str | None = "main",
    timestamp_shift: int = 0,
    **params: Any,
) -> tuple[int, dict[str, str], Any]:
    """One REST call, HMAC-signed for `account` (None: unsigned); (status, headers, body)."""
    import hashlib
    import hmac
    import urllib.error
    import urllib.parse

    headers: dict[str, str] = {}
    query = urllib.parse.urlencode(params)
    if account is not None:
        api_key, secret = KEYS[account]
        stamp = int(time.time() * 1000) + timestamp_shift
        query = f"{query}&timestamp={stamp}" if query else f"timestamp={stamp}"
        signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        query += f"&signature={signature}"
        headers["X-MBX-APIKEY"] = api_key
    request = urllib.request.Request(f"{sim.url}{path}?{query}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def best(sim: SimProcess, symbol: str) -> tuple[list[list[str]], list[list[str]]]:
    with urllib.request.urlopen(
        f"{sim.url}/api/v3/depth?symbol={symbol}&limit=20", timeout=10
    ) as r:
        depth = json.loads(r.read())
    return depth["bids"], depth["asks"]


def balance(sim: SimProcess, asset: str, account: str = "main") -> tuple[Decimal, Decimal]:
    _, _, body = rest(sim, "GET", "/api/v3/account", account)
    row = next(b for b in body["balances"] if b["asset"] == asset)
    return Decimal(row["free"]), Decimal(row["locked"])

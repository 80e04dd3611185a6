"""Journal growth of a running `serve` (issue 10; docs/decisions.md, "Book snapshots journalled
when a decision reads them"): rows and bytes written per second, idle and under a steady
order flow, with `[store] journal_books = "every_input"` (the former rule: every changed book
before every input that is not market data) beside the default `"on_read"` in the same run.

Each case starts `indexmaker serve --chain sim` on its defaults (SY100, the Binance venue on
the exchange simulator it starts, whose synthetic market moves every book) with a SQLite store
in a temporary directory and `keep_snapshots = 0` (nothing deleted while counting), waits
WARMUP seconds (books synchronised), then counts the journal rows written in WINDOW seconds
(read-only, from another connection: SQLite's WAL lets it read while serve writes) and what
they are. "flow": three clients deposited beforehand send one 25 USDC buy every FLOW_EVERY
seconds between them over the FIX/JSON WebSocket (signed, as any client). "parked" (on_read
only; its baseline is the idle case of the same run): before the warm-up a client buys 50 USDC
of SY100 and, once minted, sells it all with a floor far above what the bids pay, so the
sell waits stopped by its floor through the window (engine/redemption_candidates.py: it is
no longer priced every tick). serve is stopped with SIGTERM by its PID. Cases alternate by
rule; figures are per case, not best-of.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

from eth_account import Account

from indexmaker.app.cli import ANVIL_TEST_KEYS
from indexmaker.chain.anvil import free_port
from indexmaker.core import codec
from indexmaker.server.client import IndexMakerClient, RedemptionFill

WARMUP = 8.0
WINDOW = 30.0
FLOW_EVERY = 2.0
CLIENTS = (1, 2, 3)
SERVE = [sys.executable, "-m", "indexmaker.app.cli", "serve", "--chain", "sim", "--config"]


def _config(rule: str) -> str:
    return f"""
[sim]
deposit_endpoint = true
[api]
port = 0
[store]
keep_snapshots = 0
journal_books = "{rule}"
"""


def _address(client: int) -> str:
    return str(Account.from_key(ANVIL_TEST_KEYS[client]).address)


def _deposit(port: int, client: int, amount: Decimal) -> None:
    body = json.dumps({"address": _address(client), "amount": str(amount)}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/sim/deposit",
        body,
        {"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def _flow(port: int, seconds: float) -> int:
    """One buy every FLOW_EVERY seconds, clients in turn; returns how many were accepted."""
    accepted = 0
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        client = CLIENTS[n % len(CLIENTS)]
        async with IndexMakerClient(f"ws://127.0.0.1:{port}/ws", ANVIL_TEST_KEYS[client]) as sdk:
            await asyncio.wait_for(sdk.new_order("SY100", "buy", Decimal(25), f"b{n}"), 10)
            accepted += 1
        n += 1
        await asyncio.sleep(max(0.0, started + n * FLOW_EVERY - time.monotonic()))
    return accepted


async def _park(port: int) -> None:
    """A client's 50 USDC buy of SY100, minted, then sold whole with a floor of 1,000,000
    USDC: the redemption waits in Ready, stopped by its floor."""
    url = f"ws://127.0.0.1:{port}/ws"
    async with IndexMakerClient(url, ANVIL_TEST_KEYS[CLIENTS[0]]) as sdk:
        bought = await sdk.new_order("SY100", "buy", Decimal(50), "park-buy")
        invoice = await sdk.wait_minted(bought.client_order_id, 90)
        units = Decimal(invoice.filled_quantity)
        await asyncio.wait_for(sdk.new_order("SY100", "sell", units, "park-sell", 10**6), 10)
        await asyncio.wait_for(_stopped(sdk, "park-sell"), 60)


async def _stopped(sdk: IndexMakerClient, client_order_id: str) -> None:
    """Until the sell is reported stopped by its floor (its first hold once escrowed)."""
    async for event in sdk.events():
        if (
            isinstance(event, RedemptionFill)
            and event.client_order_id == client_order_id
            and event.status == "stopped"
        ):
            return


def _seq(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as read:
        return int(read.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0])


def _counted(db: Path, after: int) -> tuple[int, int, Counter[str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as read:
        rows = read.execute("SELECT entry FROM journal WHERE seq > ?", (after,)).fetchall()
    kinds = Counter(type(codec.decode(bytes(blob))).__name__ for (blob,) in rows)
    return len(rows), sum(len(blob) for (blob,) in rows), kinds


def measure(rule: str, flow: bool, parked: bool = False) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        root = Path(tmp)
        (root / "serve.toml").write_text(_config(rule))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INDEXMAKER_", "BINANCE_"))}
        env["INDEXMAKER_DATA_DIR"] = str(root / "data")
        log = root / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*SERVE, str(root / "serve.toml"), "--port", str(port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            deadline = time.monotonic() + 60
            while "fix_listening" not in log.read_text():
                assert process.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "serve did not start in 60 s"
                time.sleep(0.1)
            db = root / "data" / "binance" / "indexmaker.sqlite3"
            if parked:  # deposited after the warm-up: one posted at once was lost once
                time.sleep(WARMUP)
            if flow or parked:
                for client in CLIENTS:
                    _deposit(port, client, Decimal(2_000))
            if parked:
                asyncio.run(_park(port))
            time.sleep(WARMUP)
            first = _seq(db)
            started = time.monotonic()
            orders = asyncio.run(_flow(port, WINDOW)) if flow else 0
            time.sleep(max(0.0, started + WINDOW - time.monotonic()))
            elapsed = time.monotonic() - started
            rows, size, kinds = _counted(db, first)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    books = kinds.get("BookSnapshot", 0)
    return {
        "rows/s": rows / elapsed,
        "KB/min": size / elapsed * 60 / 1000,
        "book share": books / rows if rows else 0.0,
        "kinds": dict(kinds.most_common(4)),
        "orders": orders,
    }


def run() -> list[str]:
    lines = [
        f"serve --chain sim (SY100, exchange-sim), SQLite, {WINDOW:.0f} s per case after "
        f"{WARMUP:.0f} s warm-up; load {os.getloadavg()[0]:.1f}"
    ]
    for flow in (False, True):
        for rule in ("every_input", "on_read"):
            got = measure(rule, flow)
            label = f"{'flow' if flow else 'idle'} {rule:>11}"
            lines.append(_line(label, got))
    lines.append(_line("parked     on_read", measure("on_read", flow=False, parked=True)))
    lines.append(f"load after {os.getloadavg()[0]:.1f}")
    return lines


def _line(label: str, got: dict[str, object]) -> str:
    return (
        f"{label}: {got['rows/s']:8.1f} rows/s {got['KB/min']:9.1f} KB/min "
        f"books {got['book share']:.0%} orders {got['orders']} top {got['kinds']}"
    )


if __name__ == "__main__":
    for line in run():
        print(line)

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
seconds between them over the FIX/JSON WebSocket (signed, as any client). serve is stopped
with SIGTERM by its PID. Cases alternate by rule; figures are per case, not best-of.
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
from indexmaker.server.client import IndexMakerClient

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


def _seq(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as read:
        return int(read.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0])


def _counted(db: Path, after: int) -> tuple[int, int, Counter[str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as read:
        rows = read.execute("SELECT entry FROM journal WHERE seq > ?", (after,)).fetchall()
    kinds = Counter(type(codec.decode(bytes(blob))).__name__ for (blob,) in rows)
    return len(rows), sum(len(blob) for (blob,) in rows), kinds


def measure(rule: str, flow: bool) -> dict[str, object]:
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
            if flow:
                for client in CLIENTS:
                    _deposit(port, client, Decimal(2_000))
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
            lines.append(
                f"{label}: {got['rows/s']:8.1f} rows/s {got['KB/min']:9.1f} KB/min "
                f"books {got['book share']:.0%} orders {got['orders']} top {got['kinds']}"
            )
    lines.append(f"load after {os.getloadavg()[0]:.1f}")
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)

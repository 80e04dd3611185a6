"""Crash harness (issue 10): one scenario against the real `indexmaker serve` process, which
the harness kills with SIGKILL at chosen points (`INDEXMAKER_CRASH_AT`, store/crash.py) and
restarts, again and again, until the scenario is done.

The driver is idempotent the way a careful client is: before each step it reads the
service's own durable journal (read-only SQLite, WAL lets it read beside the writer) and
sends only what the service has not recorded. Results are read back from the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from eth_account import Account

from indexmaker.app.cli import ANVIL_TEST_KEYS
from indexmaker.core import codec
from indexmaker.core.events import (
    Command,
    DepositObserved,
    EngineInput,
    MintConfirmed,
    MintInvoice,
    NewIndexOrderRequest,
    PlaceExchangeOrder,
    SendToClient,
)
from indexmaker.core.journal import JournalEntry
from indexmaker.server.client import IndexMakerClient

CONFIG = """
indexes = ["SYL2"]
log_level = "DEBUG"
[server]
host = "127.0.0.1"
[solver]
mint_idle = 0.3
order_rate_limits = [{ name = "ORDERS_10S", limit = 100000, interval = 10 }]
[sim]
book_refresh = 3600          # one static market: every run sees the same books
exchange_latency = 0.005
bridge_delay = 0.05
wallet_delay = 0.03
mint_delay = 0.02
deposit_endpoint = true
[api]
port = 0                     # the query API on any free port (tests run side by side)
[store]
commit_interval = 0.05
"""
SYMBOL = "SYL2"
CLIENTS = (1, 2, 3)  # anvil test accounts
# (client, amount) deposits, then (client, client order id, USDC) orders, in this order.
DEPOSITS = ((1, Decimal(400)), (2, Decimal(300)), (3, Decimal(250)), (1, Decimal(100)))
ORDERS = (
    (1, "c1-a", Decimal(250)),
    (2, "c2-a", Decimal(200)),
    (3, "c3-a", Decimal(150)),
    (1, "c1-b", Decimal(200)),
    (2, "c2-b", Decimal(60)),
)
SERVE = [sys.executable, "-m", "indexmaker.app.cli", "serve", "--venue", "sim", "--config"]
STEP_LIMIT = 5.0  # seconds one request may take before it is treated as lost


def address(client: int) -> str:
    return str(Account.from_key(ANVIL_TEST_KEYS[client]).address)


@dataclass
class StoreView:
    """What the service has durably recorded, read from its SQLite file."""

    entries: list[JournalEntry] = field(default_factory=list)
    inputs: list[EngineInput] = field(default_factory=list)
    effects: list[Command] = field(default_factory=list)
    pending: int = 0

    @classmethod
    def read(cls, path: Path) -> StoreView:
        view = cls()
        if not path.exists():
            return view
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            for (blob,) in db.execute("SELECT entry FROM journal ORDER BY seq"):
                entry = codec.decode_entry(bytes(blob))
                view.entries.append(entry)
                view.inputs.append(entry.event)
            for blob, done in db.execute("SELECT command, done FROM outbox ORDER BY rowid"):
                view.effects.append(codec.decode(bytes(blob)))  # type: ignore[arg-type]
                view.pending += not done
        except sqlite3.OperationalError:  # the schema is not there yet
            pass
        finally:
            db.close()
        return view

    def deposits(self, client: int) -> int:
        who = address(client).lower()
        return sum(
            1 for e in self.inputs if isinstance(e, DepositObserved) and e.client[1].lower() == who
        )

    def ordered(self) -> set[str]:
        return {e.client_order_id for e in self.inputs if isinstance(e, NewIndexOrderRequest)}

    def invoices(self) -> list[MintInvoice]:
        return [
            e.message
            for e in self.effects
            if isinstance(e, SendToClient) and isinstance(e.message, MintInvoice)
        ]

    def exchange_orders(self) -> Counter[str]:
        return Counter(str(e.order_id) for e in self.effects if isinstance(e, PlaceExchangeOrder))

    def mints_confirmed(self) -> Counter[str]:
        return Counter(str(e.payment_id) for e in self.inputs if isinstance(e, MintConfirmed))


@dataclass
class Run:
    root: Path
    crashes: list[str]
    port: int = 0
    starts: int = 0
    kills: list[tuple[str, int, int]] = field(default_factory=list)  # point, inputs, effects
    process: subprocess.Popen[bytes] | None = None

    @property
    def db(self) -> Path:
        return self.root / "data" / "indexmaker.sqlite3"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        (self.root / "serve.toml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXMAKER_")}
        env["INDEXMAKER_DATA_DIR"] = str(self.root / "data")
        self._crash = self.crashes[self.starts] if self.starts < len(self.crashes) else None
        if self._crash:
            env["INDEXMAKER_CRASH_AT"] = self._crash
        log = self.root / f"serve-{self.starts}.log"
        self.starts += 1
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [*SERVE, str(self.root / "serve.toml"), "--port", str(self.port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while "fix_listening" not in log.read_text():
            if self.process.poll() is not None:
                return  # killed while starting (a crash point in recovery): ensure() restarts
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)

    def ensure(self) -> None:
        """Restart the service if a crash point killed it (anything else is a failure)."""
        assert self.process is not None
        code = self.process.poll()
        while code is not None:
            assert code == -signal.SIGKILL, f"serve exited {code}: {self.logs()[-2000:]}"
            view = StoreView.read(self.db)
            self.kills.append((str(self._crash), len(view.inputs), len(view.effects)))
            self.start()
            code = self.process.poll()

    def stop(self) -> None:
        assert self.process is not None
        self.ensure()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(30) == 0, self.logs()[-2000:]

    def logs(self) -> str:
        return "".join(p.read_text() for p in sorted(self.root.glob("serve-*.log")))

    def placed_exchange_orders(self) -> Counter[str]:
        """Every exchange order any life of the service sent (its log line precedes it)."""
        placed: Counter[str] = Counter()
        for line in self.logs().splitlines():
            if '"exchange_order"' in line:  # JSON lines (structlog, off a terminal)
                record = json.loads(line)
                if record.get("event") == "exchange_order":
                    placed[record["order"]] += 1
        return placed


def _deposit(url: str, client: int, amount: Decimal) -> None:
    body = json.dumps({"address": address(client), "amount": str(amount)}).encode()
    http = url.replace("ws://", "http://").removesuffix("/ws") + "/sim/deposit"
    request = urllib.request.Request(
        http, body, {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=STEP_LIMIT) as response:
        assert response.status == 200


async def _order(url: str, client: int, cid: str, amount: Decimal) -> None:
    async with IndexMakerClient(url, ANVIL_TEST_KEYS[client]) as sdk:
        await asyncio.wait_for(sdk.new_order(SYMBOL, "buy", amount, cid), STEP_LIMIT)


def drive(run: Run, limit: float = 240) -> StoreView:
    """Every deposit and order once, then wait until every order is minted."""
    deadline = time.monotonic() + limit
    run.start()
    for n, (client, amount) in enumerate(DEPOSITS):
        want = sum(1 for c, _ in DEPOSITS[: n + 1] if c == client)
        while StoreView.read(run.db).deposits(client) < want:
            assert time.monotonic() < deadline, "deposits did not go through"
            run.ensure()
            try:
                _deposit(run.url, client, amount)
            except OSError:
                time.sleep(0.05)  # the service died under us: ensure() restarts it
            _settle(run, lambda v, c=client, w=want: v.deposits(c) >= w)
    for client, cid, amount in ORDERS:
        while cid not in StoreView.read(run.db).ordered():
            assert time.monotonic() < deadline, f"order {cid} did not go through"
            run.ensure()
            try:
                asyncio.run(_order(run.url, client, cid, amount))
            except Exception:  # lost with the service: the store says what arrived
                time.sleep(0.05)
            _settle(run, lambda v, cid=cid: cid in v.ordered())
    while len(StoreView.read(run.db).invoices()) < len(ORDERS):
        assert time.monotonic() < deadline, "orders were not all minted"
        run.ensure()
        time.sleep(0.05)
    run.stop()
    return StoreView.read(run.db)


def _settle(run: Run, done: object, wait: float = 1.0) -> None:
    """Give a request the service took a moment to commit (group commit) before retrying."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if done(StoreView.read(run.db)):  # type: ignore[operator]
            return
        assert run.process is not None
        if run.process.poll() is not None:
            return
        time.sleep(0.02)

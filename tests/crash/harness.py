"""Crash harness (issue 10): one scenario against the real `indexmaker serve` process, which
the harness kills with SIGKILL at chosen places of the lifecycle (`INDEXMAKER_CRASH_AT`,
store/crash.py) and restarts, again and again, until the scenario is done.

The venue is the Binance-wire exchange simulator in its own process, which outlives every
kill of `serve` (as the real exchange does): after a restart the service asks it about the
orders it may have sent and collects their fills by trade id. Its books are a static replay
(the same in every run), so an uninterrupted run and a crashed one meet the same market.

The driver is idempotent the way a careful client is: before each step it reads the
service's own durable journal (SQLite read-only beside the writer, or PostgreSQL) and sends
only what the service has not recorded; each order is minted before the next is sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from eth_account import Account

from indexmaker.app.binance_wiring import ExchangeSimProcess, exchange_sim_access
from indexmaker.app.cli import ANVIL_TEST_KEYS
from indexmaker.chain.anvil import free_port
from indexmaker.core import codec
from indexmaker.core.events import (
    Command,
    DepositObserved,
    EngineInput,
    MintConfirmed,
    MintInvoice,
    NewIndexOrderRequest,
    PlaceExchangeOrder,
    RedemptionInvoice,
    SendToClient,
)
from indexmaker.core.journal import JournalEntry
from indexmaker.server.client import IndexMakerClient
from indexmaker.sim.chain_state import STATE_FILE as CHAIN_FILE
from indexmaker.venues.binance.rest import BinanceRest
from indexmaker.venues.binance_sim.config import (
    TEST_ED25519_API_KEY,
    TEST_ED25519_PRIVATE_PEM,
    MarketConfig,
)
from indexmaker.venues.binance_sim.market import SyntheticMarket

SYMBOL = "SYL2"
CONFIG = f"""
indexes = ["{SYMBOL}"]
log_level = "DEBUG"
[server]
host = "127.0.0.1"
[solver]
mint_idle = 0.3
order_rate_limits = [{{ name = "ORDERS_10S", limit = 100000, interval = 10 }}]
[sim]
bridge_delay = 0.05
wallet_delay = 0.03
mint_delay = 0.02
deposit_endpoint = true
withdraw_to = "0x000000000000000000000000000000000000c057"  # proceeds: exchange-sim's wallet API
[api]
port = 0                     # the query API on any free port (tests run side by side)
[chain]
mode = "sim"                 # the in-process chain: /sim/deposit, the deposits it numbers
[store]                      # last: callers append store settings
commit_interval = 0.05
"""
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
# The long variant's scenario: over twice the lifecycle, room for 56 distinct kill places
# (a restart passes whole commit groups by: ten orders left some runs at 49).
LONG_DEPOSITS = (*DEPOSITS, (2, Decimal(300)), (3, Decimal(300)), (1, Decimal(150)))
LONG_ORDERS = (
    *ORDERS,
    (3, "c3-b", Decimal(120)),
    (2, "c2-c", Decimal(150)),
    (1, "c1-c", Decimal(20)),
    (3, "c3-c", Decimal(200)),
    (2, "c2-d", Decimal(80)),
    (1, "c1-d", Decimal(100)),
    (3, "c3-d", Decimal(60)),
)


# The sell side (issue 12): (the order after whose mint it runs, the sell's client order id,
# the buy whose minted units its client sells, the share of them). Each runs alone, the
# next order waiting for its invoice. The short run's comes last, after every buy stage.
REDEMPTIONS = (("c2-b", "c1-s", "c1-b", Decimal("0.5")),)
LONG_REDEMPTIONS = (
    ("c2-b", "c1-s", "c1-a", Decimal("0.5")),
    ("c3-c", "c3-s", "c3-c", Decimal("0.6")),
)


@dataclass(frozen=True)
class Scenario:
    deposits: tuple[tuple[int, Decimal], ...] = DEPOSITS
    orders: tuple[tuple[int, str, Decimal], ...] = ORDERS
    redemptions: tuple[tuple[str, str, str, Decimal], ...] = REDEMPTIONS


LONG_SCENARIO = Scenario(LONG_DEPOSITS, LONG_ORDERS, LONG_REDEMPTIONS)
SERVE = [sys.executable, "-m", "indexmaker.app.cli", "serve", "--config"]
STEP_LIMIT = 5.0  # seconds one request may take before it is treated as lost
# A redemption's own inputs and effects (its sell orders, fills and the withdrawal hop are
# the buy side's kinds): tokens into custody, burns per (order, batch), the payout.
SELL_INPUT_KINDS = ("IndexEscrowed", "BurnConfirmed", "WithdrawalCompleted")
SELL_EFFECT_KINDS = ("EscrowIndex", "BurnIndex", "WithdrawCollateral")
# What the engine records (inputs) and asks for (effects) across the lifecycle: the kinds
# whose n-th occurrence is a kill point.
INPUT_KINDS = (
    "DepositObserved",
    "HopCompleted",
    "NewIndexOrderRequest",
    "ExchangeOrderAccepted",
    "ExchangeFill",
    "ExchangeOrderClosed",
    "MintConfirmed",
    *SELL_INPUT_KINDS,
)
EFFECT_KINDS = (
    "RouteCollateral",
    "PlaceExchangeOrder",
    "MintIndex",
    "SendToClient",
    *SELL_EFFECT_KINDS,
)
POINTS = ("commit", "effect", "before_commit")
SELL_KINDS = frozenset((*SELL_INPUT_KINDS, *SELL_EFFECT_KINDS))
BUY_KINDS = frozenset(INPUT_KINDS + EFFECT_KINDS) - SELL_KINDS
# The stages a long run must kill at, buy and sell side: after the commit of every durable
# input kind; before (the commit holding it) and after (it left) every outbound effect.
STAGES = frozenset(
    {("commit", k) for k in INPUT_KINDS}
    | {(p, k) for k in EFFECT_KINDS for p in ("commit", "effect")}
)
NEAR = 3  # lifecycle entries of the calm journal, from the nearest ahead, a kill may pick
COVER = 12  # ... or, for a (point, kind) no kill has had yet


def address(client: int) -> str:
    return str(Account.from_key(ANVIL_TEST_KEYS[client]).address)


def static_books(path: Path) -> None:
    """One snapshot line per pair of the index (the simulator's synthetic first quotes),
    nothing after: a market that stands still but for what our own orders take."""
    market = SyntheticMarket(MarketConfig(indexes=(SYMBOL,), levels=10))
    lines = []
    for quotes in market.initial():
        spec = market.specs[quotes.symbol]
        side = {
            name: [[str(spec.price_of(p)), str(spec.qty_of(q))] for p, q in sorted(levels.items())]
            for name, levels in (("bids", quotes.bids), ("asks", quotes.asks))
        }
        side["bids"].reverse()
        lines.append(json.dumps({"symbol": quotes.symbol, "lastUpdateId": 1, **side}))
    path.write_text("\n".join(lines) + "\n")


@dataclass
class StoreView:
    """What the service has durably recorded, read from its database."""

    entries: list[JournalEntry] = field(default_factory=list)
    inputs: list[EngineInput] = field(default_factory=list)
    effects: list[Command] = field(default_factory=list)
    effect_seqs: list[int] = field(default_factory=list)
    pending: int = 0

    @classmethod
    def read(cls, db: Path | str) -> StoreView:
        view = cls()
        # The journal only grows and an outbox row changes only its done flag: each read
        # decodes what is new since the last one (the driver polls every 20 ms; decoding the
        # whole journal each time took a core from the service it waits for).
        entries, commands = _DECODED.setdefault(str(db), ([], {}))
        try:
            journal, outbox = _rows(db, entries[-1].seq if entries else -1)
        except _NotYet:
            return view
        entries.extend(codec.decode_entry(bytes(blob)) for (blob,) in journal)
        view.entries = list(entries)
        view.inputs = [entry.event for entry in entries]
        for key, seq, blob, done in sorted(outbox, key=lambda r: (r[1], int(r[0].split(".")[1]))):
            if key not in commands:
                commands[key] = codec.decode(bytes(blob))  # type: ignore[assignment]
            view.effects.append(commands[key])
            view.effect_seqs.append(int(seq))
            view.pending += not done
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

    def redemption_invoices(self) -> list[RedemptionInvoice]:
        return [
            e.message
            for e in self.effects
            if isinstance(e, SendToClient) and isinstance(e.message, RedemptionInvoice)
        ]

    def exchange_orders(self) -> Counter[str]:
        return Counter(str(e.order_id) for e in self.effects if isinstance(e, PlaceExchangeOrder))

    def mints_confirmed(self) -> Counter[str]:
        return Counter(str(e.payment_id) for e in self.inputs if isinstance(e, MintConfirmed))

    def kill_points(self) -> list[tuple[int, str]]:
        """Every place of this run's lifecycle a crash point can name, with the journal seq
        it was reached at: (seq, "<point>:<Kind>#<n>"), in lifecycle order. After and before
        the commit of every durable input; before (its commit) and after (it left) every
        outbound effect."""
        points: list[tuple[int, str]] = []
        seen: Counter[str] = Counter()
        for entry in self.entries:
            kind = type(entry.event).__name__
            if kind in INPUT_KINDS:
                seen[kind] += 1
                for point in ("before_commit", "commit"):
                    points.append((entry.seq, f"{point}:{kind}#{seen[kind]}"))
        for seq, effect in zip(self.effect_seqs, self.effects, strict=True):
            kind = type(effect).__name__
            if kind in EFFECT_KINDS:
                seen[kind] += 1
                for point in ("commit", "effect"):
                    points.append((seq, f"{point}:{kind}#{seen[kind]}"))
        return sorted(points, key=lambda p: p[0])

    def lifecycle(self) -> Counter[str]:
        """How many of each lifecycle kind are durable (ticks and market data left out)."""
        return Counter(
            name
            for name in (type(e).__name__ for e in [*self.inputs, *self.effects])
            if name in INPUT_KINDS or name in EFFECT_KINDS
        )


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: the crash point the life was started with and where it really died.
    `place` is (point, the durable lifecycle counts, the effect for `effect`): two kills
    at one place died with nothing of the lifecycle between them; ticks and market data,
    journalled all the time, do not make a place."""

    spec: str
    inputs: int
    effects: int
    place: tuple[object, ...]

    @classmethod
    def of(cls, spec: str, view: StoreView) -> Kill:
        point = spec.partition(":")[0]
        effect = spec if point == "effect" else ""
        place = (point, tuple(sorted(view.lifecycle().items())), effect)
        return cls(spec, len(view.inputs), len(view.effects), place)

    @property
    def stage(self) -> tuple[str, str]:
        """(point, kind): e.g. ("effect", "PlaceExchangeOrder")."""
        return _stage(self.spec)


class _NotYet(Exception):
    """The service has not created its schema yet."""


_DECODED: dict[str, tuple[list[JournalEntry], dict[str, Command]]] = {}


def _rows(db: Path | str, after: int) -> tuple[list[Any], list[Any]]:
    """Journal entries after seq `after`, in order, and every outbox row, its command only
    when it came with one of them (an effect is committed with the entry that caused it)."""
    journal_sql = f"SELECT entry FROM journal WHERE seq > {int(after)} ORDER BY seq"
    outbox_sql = (
        "SELECT key, journal_seq, "
        f"CASE WHEN journal_seq > {int(after)} THEN command END, done FROM outbox"
    )
    if isinstance(db, Path):
        import sqlite3

        if not db.exists():
            raise _NotYet
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(journal_sql).fetchall(), conn.execute(outbox_sql).fetchall()
        except sqlite3.OperationalError as error:
            raise _NotYet from error
        finally:
            conn.close()
    import psycopg

    try:
        with psycopg.connect(db, connect_timeout=5) as conn:
            return conn.execute(journal_sql).fetchall(), conn.execute(outbox_sql).fetchall()
    except psycopg.errors.UndefinedTable as error:
        raise _NotYet from error


class KillPlan:
    """Where each life of the crashed service dies, chosen at each start from the places of
    the calm run's lifecycle (`StoreView.kill_points`) that this run has not reached yet
    (by the store's own counts), so every chosen place is still ahead and gets reached.

    `stages` given: one life per (point, kind), at the middle of its occurrences still
    ahead (the representative subset). Otherwise lives die until `kills` distinct places
    (`Kill.place`) are reached and every stage (STAGES) has been killed at, or `lives` are
    spent. A stage not killed yet comes first, at its first occurrence still ahead: a buy
    side's wherever it is (the first order has them all); a sell side's within the order
    under way (up to the next order's request: each order runs alone, so a jump skips at most
    the rest of one sell's lifecycle, never the buys before it; the first sell covers the
    sell side's stages, the second is there for what a restart passed by); once `kills`
    places are reached, wherever it comes next. (A kind's count is the calm run's: a restart
    that splits a batch sends more exchange orders and burns than it did, so the calm
    run's n-th may come in a later order of the crashed one.) Else one of the nearest
    places ahead that needs some of the lifecycle to become durable first (so it cannot be
    where the last one died), a (point, kind) not killed yet first (a little further ahead
    if need be), else the kinds of point in turn. Nearest, because a restart passes whole
    groups by as it reconciles: the lifecycle has few places to spare. A place is never
    chosen twice."""

    def __init__(
        self,
        points: list[tuple[int, str]],
        kills: int,
        stages: tuple[tuple[str, str], ...] = (),
        lives: int | None = None,
    ) -> None:
        self.seq_of = dict((spec, seq) for seq, spec in points)
        self.points = [spec for _, spec in points]
        self.kills = kills
        self.lives = lives if lives is not None else kills + kills // 2
        self.stages = list(stages)
        self.subset = bool(stages)  # the subset ends with its stages
        self.used: list[str] = []
        self.done: list[Kill] = []  # told by Run after each kill

    @property
    def places(self) -> int:
        return len({k.place for k in self.done})

    @property
    def covered(self) -> set[tuple[str, str]]:
        return {k.stage for k in self.done}

    def next(self, view: StoreView) -> str | None:
        counts = view.lifecycle()

        def ahead(spec: str) -> bool:
            kind, _, n = spec.partition(":")[2].partition("#")
            return counts[kind] < int(n) and spec not in self.used

        def progresses(spec: str) -> bool:
            # before_commit of the n-th: the (n-1)-th must be durable first (a new place).
            point, _, target = spec.partition(":")
            kind, _, n = target.partition("#")
            return point != "before_commit" or counts[kind] + 1 < int(n)

        chosen = None
        if self.subset:
            while self.stages and chosen is None:
                point, kind = self.stages.pop(0)
                matching = [p for p in self.points if p.startswith(f"{point}:{kind}#")]
                later = [p for p in matching[len(matching) // 2 :] if ahead(p)]
                chosen = later[0] if later else None
        elif len(self.used) < self.lives:
            candidates = [p for p in self.points if ahead(p) and progresses(p)]
            covered = self.covered
            due = [p for p in candidates if _stage(p) in STAGES and _stage(p) not in covered]
            if self.places >= self.kills:
                chosen = due[0] if due else None  # only the stages still missing
            elif candidates:
                # The order under way ends where the next order's request is recorded.
                following = f"commit:NewIndexOrderRequest#{counts['NewIndexOrderRequest'] + 1}"
                horizon = self.seq_of.get(following, self.seq_of[self.points[-1]])
                due = [p for p in due if self.seq_of[p] <= horizon or _stage(p)[1] in BUY_KINDS]
                # The nearest places: a restart passes whole groups by as it reconciles, so
                # the lifecycle has few places to spare (the calm journal's next few entries).
                # Measured in lifecycle entries of the calm journal (ticks and market data
                # are entries too, as many as time allows: they do not count).
                seqs = sorted({self.seq_of[p] for p in candidates})
                near, cover = seqs[:NEAR][-1], seqs[:COVER][-1]
                window = [p for p in candidates if self.seq_of[p] <= near]
                turn = POINTS[len(self.used) % len(POINTS)]
                new = [
                    p for p in candidates if self.seq_of[p] <= cover and _stage(p) not in covered
                ]
                in_turn = [p for p in window if p.startswith(turn + ":")]
                chosen = (due or new or in_turn or window)[0]
        if chosen is not None:
            self.used.append(chosen)
        return chosen


def _stage(spec: str) -> tuple[str, str]:
    """(point, kind) of a crash point spec."""
    point, _, target = spec.partition(":")
    return point, target.partition("#")[0]


@dataclass
class Run:
    """One life story of the service: `serve` started, killed where `plan` says (a KillPlan,
    or crash points in order; none: never) and restarted. With `open_venue()` first it trades
    on an exchange-sim process that outlives every kill; else on the in-process venue."""

    root: Path
    plan: KillPlan | list[str] | None = None
    store_url: str | None = None  # PostgreSQL; None: SQLite in root/data
    port: int = 0
    starts: int = 0
    kills: list[Kill] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    venue: ExchangeSimProcess | None = None
    # The exchange simulator's withdrawal history (its wallet API), read before it stops.
    withdrawals: list[dict[str, Any]] = field(default_factory=list)
    _crash: str | None = None

    @property
    def db(self) -> Path | str:
        # serve keeps the Binance venue's journal under <data_dir>/binance/ (service.venue_store)
        venue_dir = ("binance",) if self.venue is not None else ()
        return self.store_url or self.root.joinpath("data", *venue_dir, "indexmaker.sqlite3")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def open_venue(self) -> None:
        books = self.root / "books.jsonl"
        static_books(books)
        self.venue = ExchangeSimProcess(
            "--replay", str(books), "--orders-10s", "100000", "--weight-limit", "1000000"
        )
        (self.root / "venue.pem").write_text(TEST_ED25519_PRIVATE_PEM)

    def close_venue(self) -> None:
        if self.venue is not None:
            self.venue.stop()

    def start(self) -> None:
        self.port = self.port or free_port()
        config = CONFIG
        if self.store_url:
            config += 'backend = "postgresql"\n'
        (self.root / "serve.toml").write_text(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INDEXMAKER_", "BINANCE_"))}
        env["INDEXMAKER_DATA_DIR"] = str(self.root / "data")
        venue = ["--venue", "sim"]
        if self.venue is not None:
            venue = ["--venue", "binance"]
            ws = self.venue.url.replace("http://", "ws://")
            env |= {
                "BINANCE_REST_URL": self.venue.url,
                "BINANCE_WS_API_URL": f"{ws}/ws-api/v3",
                "BINANCE_STREAM_URL": ws,
                "BINANCE_API_KEY": TEST_ED25519_API_KEY,
                "BINANCE_PRIVATE_KEY_FILE": str(self.root / "venue.pem"),
            }
        if self.store_url:
            env["INDEXMAKER_STORE_URL"] = self.store_url
        self._crash = self._next_crash()
        if self._crash:
            env["INDEXMAKER_CRASH_AT"] = self._crash
        log = self.root / f"serve-{self.starts}.log"
        self.starts += 1
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [*SERVE, str(self.root / "serve.toml"), *venue, "--port", str(self.port)],
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

    def _next_crash(self) -> str | None:
        if isinstance(self.plan, list):
            return self.plan.pop(0) if self.plan else None
        return self.plan.next(StoreView.read(self.db)) if self.plan is not None else None

    def ensure(self) -> None:
        """Restart the service if a crash point killed it (anything else is a failure)."""
        assert self.process is not None
        code = self.process.poll()
        while code is not None:
            assert code == -signal.SIGKILL, f"serve exited {code}: {self.logs()[-2000:]}"
            kill = Kill.of(str(self._crash), StoreView.read(self.db))
            self.kills.append(kill)
            if isinstance(self.plan, KillPlan):
                self.plan.done.append(kill)
            self.start()
            code = self.process.poll()

    def stop(self) -> None:
        assert self.process is not None
        self.ensure()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(30) == 0, self.logs()[-2000:]

    def chain(self) -> dict[str, Any]:
        """The simulated chain as the service left it (sim/chain_state.py): what each client
        and custody hold, what was burned and paid, every id carried out with its tx."""
        state: dict[str, Any] = json.loads(
            (self.root / "data" / "binance" / CHAIN_FILE).read_text()
        )
        return state

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


async def _order(url: str, client: int, cid: str, amount: Decimal, side: str = "buy") -> None:
    async with IndexMakerClient(url, ANVIL_TEST_KEYS[client]) as sdk:
        await asyncio.wait_for(sdk.new_order(SYMBOL, side, amount, cid), STEP_LIMIT)


def _redeem(
    run: Run, deadline: float, scenario: Scenario, cid: str, of: str, share: Decimal
) -> None:
    """Sell `share` of the units the buy `of` minted (the same in every run: its mint
    invoice says how many) and wait for the redemption's invoice: burned, withdrawn, paid."""
    client = next(c for c, buy, _ in scenario.orders if buy == of)
    minted = {i.client_order_id: i for i in StoreView.read(run.db).invoices()}[of]
    units = (minted.filled_quantity * share).quantize(Decimal("1e-15"), rounding=ROUND_DOWN)
    _until(
        run,
        deadline,
        lambda v: cid in v.ordered(),
        lambda: asyncio.run(_order(run.url, client, cid, units, "sell")),
        f"sell {cid}",
    )
    _until(
        run,
        deadline,
        lambda v: cid in {i.client_order_id for i in v.redemption_invoices()},
        None,
        f"redemption invoice of {cid}",
    )


def _while_alive(run: Run, request: Coroutine[Any, Any, None]) -> None:
    """A client request, given up as soon as the service dies under it: the driver sends it
    again once the service is back (waiting out STEP_LIMIT for an answer that cannot come
    cost five seconds a kill)."""

    async def main() -> None:
        task = asyncio.ensure_future(request)
        while not task.done():
            if run.process is None or run.process.poll() is not None:
                task.cancel()
                raise ConnectionError("the service died")
            await asyncio.wait({task}, timeout=0.02)
        task.result()

    asyncio.run(main())


def drive(run: Run, limit: float = 240, scenario: Scenario = Scenario()) -> StoreView:
    """Every deposit and order once, each order minted before the next is sent (so the
    batches, and what they cost, do not depend on timing); then stop the service."""
    deadline = time.monotonic() + limit
    run.open_venue()
    try:
        run.start()
        for n, (client, amount) in enumerate(scenario.deposits):
            want = sum(1 for c, _ in scenario.deposits[: n + 1] if c == client)
            _until(
                run,
                deadline,
                lambda v, c=client, w=want: v.deposits(c) >= w,
                lambda c=client, a=amount: _deposit(run.url, c, a),
                "deposit",
            )
        for n, (client, cid, amount) in enumerate(scenario.orders):
            _until(
                run,
                deadline,
                lambda v, cid=cid: cid in v.ordered(),
                lambda c=client, cid=cid, a=amount: _while_alive(run, _order(run.url, c, cid, a)),
                f"order {cid}",
            )
            _until(run, deadline, lambda v, n=n: len(v.invoices()) > n, None, f"mint of {cid}")
            for after, sell, of, share in scenario.redemptions:
                if after == cid:
                    _redeem(run, deadline, scenario, sell, of, share)
        run.stop()
        run.withdrawals = _exchange_withdrawals(run)
    finally:
        if run.process is not None and run.process.poll() is None:
            run.process.kill()
            run.process.wait(10)
        run.close_venue()
    return StoreView.read(run.db)


def _exchange_withdrawals(run: Run) -> list[dict[str, Any]]:
    """Every USDC withdrawal of the service's account, as the exchange simulator's wallet API
    lists it (GET /sapi/v1/capital/withdraw/history, signed)."""
    assert run.venue is not None
    venue = BinanceRest(*exchange_sim_access(run.venue.url))

    async def history() -> list[dict[str, Any]]:
        try:
            path = "/sapi/v1/capital/withdraw/history"
            return list(await venue.signed("GET", path, {"coin": "USDC"}, weight=1))
        finally:
            await venue.close()

    return asyncio.run(history())


def _until(
    run: Run,
    deadline: float,
    done: Callable[[StoreView], bool],
    send: Callable[[], object] | None,
    what: str,
) -> None:
    """Send (when given) until the store records it; a request lost with the service is
    sent again once it is back. Waits a moment per try for the group commit."""
    while not done(StoreView.read(run.db)):
        assert time.monotonic() < deadline, f"{what} did not go through"
        run.ensure()
        if send is not None:
            try:
                send()
            except Exception:  # lost with the service: the store says what arrived
                time.sleep(0.05)
        end = time.monotonic() + (1.0 if send is not None else 0.05)
        while time.monotonic() < end:
            if done(StoreView.read(run.db)):
                return
            assert run.process is not None
            if run.process.poll() is not None:
                break
            time.sleep(0.02)

"""Scenario files, read and built: a TOML file becomes a simulated world ready to play.

The file's values are decimal strings (never floats) and durations ('100ms', '2s'); its
configuration, baskets, rules, books, venue behaviour and bridge terms become the
SimulatedWorld that scenario.py plays the timeline on and scenario_checks.py inspects.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from indexmaker.core.events import BookSnapshot, EngineInput, PlaceExchangeOrder
from indexmaker.core.ids import ClientKey, Symbol, client_key, instrument
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import EngineSetup
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.order import OrderUpdate
from indexmaker.model.redemption import Redemption
from indexmaker.model.side import BookSide
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import Behaviour, SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

CHAIN_ID = 42161
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


class ScenarioError(Exception):
    """The scenario file itself is malformed."""


# ---------------------------------------------------------------------- values


def duration(value: object) -> timedelta:
    """'100ms', '2s', '30m', '1h' (or a number of seconds)."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ScenarioError(f"not a duration: {value!r} (use e.g. '100ms', '2s', '30m')")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def number(value: object) -> Decimal:
    if isinstance(value, float):
        raise ScenarioError(f"write numbers as strings, not floats: {value!r}")
    if isinstance(value, int | str | Decimal):
        return Decimal(value)
    raise ScenarioError(f"not a number: {value!r}")


def levels(raw: object) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(raw, list):
        raise ScenarioError(f"levels must be a list of [price, quantity], got {raw!r}")
    return [(number(price), number(quantity)) for price, quantity in raw]


# ---------------------------------------------------------------------- the file


@dataclass(slots=True)
class Scenario:
    name: str
    path: Path
    data: dict[str, Any]
    xfail: str | None = None

    @classmethod
    def load(cls, path: Path) -> Scenario:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        xfail = data.get("xfail")
        return cls(data.get("name", path.stem), path, data, xfail)


def solver_config(overrides: Mapping[str, object]) -> SolverConfig:
    kinds = {f.name: f.type for f in dataclasses.fields(SolverConfig)}
    values: dict[str, Any] = {}
    for name, raw in overrides.items():
        kind = kinds.get(name)
        if kind is None:
            raise ScenarioError(f"config: SolverConfig has no field {name!r}")
        if kind == "Decimal":
            values[name] = number(raw)
        elif kind == "int":
            values[name] = int(str(raw))
        elif kind == "timedelta":
            values[name] = duration(raw)
        else:
            raise ScenarioError(f"config: {name} cannot be set from a scenario")
    return SolverConfig(**values)


def _rules(symbol: str, raw: Mapping[str, object]) -> InstrumentRules:
    fields = {k: number(v) for k, v in raw.items()}
    return InstrumentRules(instrument(symbol), symbol.removesuffix("USDC"), "USDC", **fields)


def behaviour(raw: Mapping[str, object]) -> Behaviour:
    reject = raw.get("reject")
    return Behaviour(
        fill_ratio=number(raw.get("fill_ratio", "1")),
        reject=str(reject) if reject is not None else None,
        splits=int(str(raw.get("splits", 1))),
    )


# ---------------------------------------------------------------------- the world


@dataclass(slots=True)
class _Cursor:
    """How much of each world log the previous check already looked at."""

    messages: int = 0
    exchange_orders: int = 0
    batches: int = 0
    mints: int = 0
    alerts: int = 0
    burns: int = 0
    payouts: int = 0
    escrows: int = 0
    rebalances: int = 0


@dataclass(slots=True)
class ScenarioRun:
    scenario: Scenario
    world: SimulatedWorld
    clients: dict[str, ClientKey]
    updates: dict[str, OrderUpdate] = field(default_factory=dict)
    redemptions: dict[str, Redemption] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    cursor: _Cursor = field(default_factory=_Cursor)

    def client(self, name: object) -> ClientKey:
        key = str(name)
        if key not in self.clients:
            self.clients[key] = client_key(CHAIN_ID, default_address(key))
        return self.clients[key]

    def name_of(self, client: ClientKey) -> str:
        for name, key in self.clients.items():
            if key == client:
                return name
        return str(client)


def default_address(name: str) -> str:
    return "0x" + name.encode().hex().ljust(40, "0")[:40]


def build(scenario: Scenario) -> ScenarioRun:
    data = scenario.data
    config = solver_config(data.get("config", {}))
    baskets = {
        name: Basket(
            Symbol(name),
            tuple(BasketAsset(instrument(a), number(q)) for a, q in assets.items()),
        )
        for name, assets in data.get("indexes", {}).items()
    }
    books = {
        instrument(s): (levels(b.get("bids", [])), levels(b.get("asks", [])))
        for s, b in data.get("books", {}).items()
    }
    # A symbol with a book and no [rules] entry trades on a venue without filters (tick, step
    # and minimums disabled): known rules, as the engine requires, that change nothing.
    raw_rules = data.get("rules", {})
    rules = {
        instrument(s): _rules(s, raw_rules.get(s, {}))
        for s in sorted({*data.get("books", {}), *raw_rules})
    }
    venue = data.get("exchange", {})
    exchange = SimulatedExchange(
        books,
        fee_rate=number(venue.get("fee_rate", "0.001")),
        behaviour={instrument(s): behaviour(b) for s, b in data.get("behaviour", {}).items()},
        rules=dict(rules),
    )
    bridges = {
        name: BridgeTerms(
            fixed_fee=number(terms.get("fixed_fee", "0")),
            rate=number(terms.get("rate", "0")),
            delay=duration(terms.get("delay", "2s")),
        )
        for name, terms in data.get("bridges", {}).items()
    }
    chain = SimulatedChain(
        bridges=bridges, mint_delay=duration(data.get("chain", {}).get("mint_delay", "1s"))
    )
    setup = EngineSetup(baskets=baskets, config=config, rules=rules)
    world = SimulatedWorld(
        setup, exchange, chain, exchange_latency=duration(venue.get("latency", "20ms"))
    )
    if venue.get("book_after_trades", True):
        _publish_books_after_trades(world)
    clients = {
        name: client_key(CHAIN_ID, address) for name, address in data.get("clients", {}).items()
    }
    return ScenarioRun(scenario, world, clients)


def _publish_books_after_trades(world: SimulatedWorld) -> None:
    """The venue's market data follows its matches: after an order executes, the engine
    receives the symbol's book as the venue now holds it, with the execution reports' latency
    (a real connector's diff-depth stream does the same). Without it the engine would size the
    next batch on liquidity that has already been taken."""
    exchange = world.exchange
    execute = exchange.execute

    def execute_and_publish(order: PlaceExchangeOrder, now: datetime) -> list[EngineInput]:
        events = execute(order, now)
        book = exchange.books.get(order.instrument)
        if book is not None:
            events.append(
                BookSnapshot(
                    order.instrument,
                    tuple(book.levels(BookSide.BIDS, 1000)),
                    tuple(book.levels(BookSide.ASKS, 1000)),
                )
            )
        return events

    exchange.execute = execute_and_publish  # type: ignore[method-assign]

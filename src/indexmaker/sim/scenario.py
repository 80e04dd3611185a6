"""Scenario files: a TOML story of the buy side, run on the simulated world and checked.

A scenario states the configuration, baskets, books, venue behaviour and bridge fees, then a
timeline of steps. Action steps drive the world (deposit, order, cancel, quote, advance the
clock, change a book or a symbol's behaviour); `check` steps compare what happened since the
previous check of the same log (client messages, exchange orders, batches, mints, alerts;
an alert nobody expected is always a mismatch) and the state now
(order updates, collateral ledgers, minted totals, inventory) with exact Decimal figures.

Expected numbers are decimal strings compared exactly (numerically: "2" equals "2.000000"),
or `=expr`: arithmetic evaluated here on the project's Decimal context with + - * /, min, max,
and the report roundings usdc(x), idx(x), rate(x), up(x, step), down(x, step). An expression
lets a scenario write a figure as the derivation it comes from, evaluated independently of the
engine. Everything runs on the manual clock: no sleeping, no sockets.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from indexmaker.core.events import (
    BookSnapshot,
    CancelIndexOrderRequest,
    CancelQuoteRequest,
    ClientResponse,
    EngineInput,
    NewIndexOrderRequest,
    NewQuoteRequest,
    PlaceExchangeOrder,
)
from indexmaker.core.ids import ClientKey, ClientOrderId, ClientQuoteId, Symbol, client_key
from indexmaker.core.money import (
    money_context,
    round_down_to_step,
    round_index_down,
    round_rate,
    round_up_to_step,
    round_usdc,
)
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import EngineSetup
from indexmaker.model.filters import SymbolRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.order import OrderUpdate
from indexmaker.model.side import Side
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import Behaviour, SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

CHAIN_ID = 42161
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
_ACTIONS = (
    "deposit",
    "order",
    "cancel",
    "quote",
    "cancel_quote",
    "advance",
    "book",
    "behaviour",
    "check",
)


class ScenarioError(Exception):
    """The scenario file itself is malformed."""


class ScenarioMismatch(AssertionError):
    """What happened differs from what the scenario expects; lists every difference."""


# ---------------------------------------------------------------------- values


def duration(value: object) -> timedelta:
    """'100ms', '2s', '30m', '1h' (or a number of seconds)."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ScenarioError(f"not a duration: {value!r} (use e.g. '100ms', '2s', '30m')")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _number(value: object) -> Decimal:
    if isinstance(value, float):
        raise ScenarioError(f"write numbers as strings, not floats: {value!r}")
    if isinstance(value, int | str | Decimal):
        return Decimal(value)
    raise ScenarioError(f"not a number: {value!r}")


_FUNCTIONS: dict[str, Callable[..., Decimal]] = {
    "min": min,
    "max": max,
    "usdc": round_usdc,
    "idx": round_index_down,
    "rate": round_rate,
    "up": round_up_to_step,
    "down": round_down_to_step,
}


def evaluate(expression: str) -> Decimal:
    """Exact Decimal arithmetic on the project context; nothing but numbers and _FUNCTIONS."""
    tree = ast.parse(expression.strip(), mode="eval")

    def walk(node: ast.AST) -> Decimal:
        match node:
            case ast.Expression(body=body):
                return walk(body)
            case ast.Constant(value=int() | str() as value):
                return Decimal(value)
            case ast.Constant(value=float()):
                # The literal's text is exact; ast gives a float, so re-read the source text.
                text = ast.get_source_segment(expression.strip(), node)
                return Decimal(text or "")
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -walk(operand)
            case ast.BinOp(left=left, op=op, right=right):
                a, b = walk(left), walk(right)
                if isinstance(op, ast.Add):
                    return a + b
                if isinstance(op, ast.Sub):
                    return a - b
                if isinstance(op, ast.Mult):
                    return a * b
                if isinstance(op, ast.Div):
                    return a / b
            case ast.Call(func=ast.Name(id=name), args=args) if name in _FUNCTIONS:
                return Decimal(_FUNCTIONS[name](*(walk(a) for a in args)))
        raise ScenarioError(f"unsupported expression {ast.dump(node)} in {expression!r}")

    with money_context():
        return walk(tree)


def expected_number(value: object) -> Decimal:
    if isinstance(value, str) and value.startswith("="):
        return evaluate(value[1:])
    return _number(value)


def _levels(raw: object) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(raw, list):
        raise ScenarioError(f"levels must be a list of [price, quantity], got {raw!r}")
    return [(_number(price), _number(quantity)) for price, quantity in raw]


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
            values[name] = _number(raw)
        elif kind == "int":
            values[name] = int(str(raw))
        elif kind == "timedelta":
            values[name] = duration(raw)
        else:
            raise ScenarioError(f"config: {name} cannot be set from a scenario")
    return SolverConfig(**values)


def _rules(symbol: str, raw: Mapping[str, object]) -> SymbolRules:
    fields = {k: _number(v) for k, v in raw.items()}
    return SymbolRules(Symbol(symbol), symbol.removesuffix("USDC"), "USDC", **fields)


def _behaviour(raw: Mapping[str, object]) -> Behaviour:
    reject = raw.get("reject")
    return Behaviour(
        fill_ratio=_number(raw.get("fill_ratio", "1")),
        reject=str(reject) if reject is not None else None,
        splits=int(str(raw.get("splits", 1))),
    )


# ---------------------------------------------------------------------- running


@dataclass(slots=True)
class _Cursor:
    """How much of each world log the previous check already looked at."""

    messages: int = 0
    exchange_orders: int = 0
    batches: int = 0
    mints: int = 0
    alerts: int = 0


@dataclass(slots=True)
class ScenarioRun:
    scenario: Scenario
    world: SimulatedWorld
    clients: dict[str, ClientKey]
    updates: dict[str, OrderUpdate] = field(default_factory=dict)
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
            tuple(BasketAsset(Symbol(a), _number(q)) for a, q in assets.items()),
        )
        for name, assets in data.get("indexes", {}).items()
    }
    rules = {s: _rules(s, r) for s, r in data.get("rules", {}).items()}
    books = {
        Symbol(s): (_levels(b.get("bids", [])), _levels(b.get("asks", [])))
        for s, b in data.get("books", {}).items()
    }
    venue = data.get("exchange", {})
    exchange = SimulatedExchange(
        books,
        fee_rate=_number(venue.get("fee_rate", "0.001")),
        behaviour={Symbol(s): _behaviour(b) for s, b in data.get("behaviour", {}).items()},
        rules={Symbol(s): r for s, r in rules.items()},
    )
    bridges = {
        name: BridgeTerms(
            fixed_fee=_number(terms.get("fixed_fee", "0")),
            rate=_number(terms.get("rate", "0")),
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

    def execute_and_publish(order: PlaceExchangeOrder) -> list[EngineInput]:
        events = execute(order)
        book = exchange.books.get(order.symbol)
        if book is not None:
            events.append(
                BookSnapshot(
                    order.symbol,
                    tuple(book.levels(Side.BUY, 1000)),
                    tuple(book.levels(Side.SELL, 1000)),
                )
            )
        return events

    exchange.execute = execute_and_publish  # type: ignore[method-assign]


def run(scenario: Scenario) -> ScenarioRun:
    """Play every step; raise ScenarioMismatch listing every difference found."""
    with money_context():
        state = build(scenario)
        for number, step in enumerate(scenario.data.get("steps", []), start=1):
            actions = [a for a in _ACTIONS if a in step]
            if len(actions) != 1:
                raise ScenarioError(
                    f"{scenario.name}: step {number} needs exactly one of {_ACTIONS}, has {actions}"
                )
            label = f"step {number} ({actions[0]} {step.get(actions[0])!s})"
            try:
                _STEP_RUNNERS[actions[0]](state, step, label)
            except ScenarioError as error:
                raise ScenarioError(f"{scenario.name}: {label}: {error}") from error
    if state.errors:
        raise ScenarioMismatch(
            f"scenario {scenario.name!r} ({scenario.path.name}):\n  " + "\n  ".join(state.errors)
        )
    return state


def _deposit(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    state.world.deposit(state.client(step["deposit"]), _number(step["amount"]))


def _order(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    client = state.client(step["order"])
    order_id = ClientOrderId(str(step["id"]))
    side = Side.SELL if str(step.get("side", "buy")).lower() == "sell" else Side.BUY
    state.world.submit(
        NewIndexOrderRequest(
            client, order_id, Symbol(step["symbol"]), side, _number(step["amount"])
        )
    )
    update = state.world.engine.orders.update(client, order_id)
    if update is not None and order_id not in state.updates:
        state.updates[order_id] = update


def _cancel(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    request = CancelIndexOrderRequest(
        state.client(step["cancel"]),
        ClientOrderId(str(step["id"])),
        Symbol(step["symbol"]),
        _number(step["amount"]),
    )
    state.world.submit(request)


def _quote(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    request = NewQuoteRequest(
        state.client(step["quote"]),
        ClientQuoteId(str(step["id"])),
        Symbol(step["symbol"]),
        Side.BUY,
        _number(step["amount"]),
    )
    state.world.submit(request)


def _cancel_quote(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    request = CancelQuoteRequest(
        state.client(step["cancel_quote"]), ClientQuoteId(str(step["id"])), Symbol(step["symbol"])
    )
    state.world.submit(request)


def _advance(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    state.world.advance(duration(step["advance"]))


def _book(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    """Replace a symbol's book at the venue and tell the engine (a fresh snapshot)."""
    symbol = Symbol(step["book"])
    exchange = state.world.exchange
    bids, asks = _levels(step.get("bids", [])), _levels(step.get("asks", []))
    book = exchange.books.get(symbol)
    if book is None:
        raise ScenarioError(f"unknown book {symbol}")
    book.apply_snapshot(bids, asks)
    for snapshot in exchange.snapshots():
        if snapshot.symbol == symbol:
            state.world.submit(snapshot)


def _set_behaviour(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    raw = {k: v for k, v in step.items() if k != "behaviour"}
    state.world.exchange.behaviour[Symbol(step["behaviour"])] = _behaviour(raw)


_STEP_RUNNERS: dict[str, Callable[[ScenarioRun, Mapping[str, Any], str], None]] = {
    "deposit": _deposit,
    "order": _order,
    "cancel": _cancel,
    "quote": _quote,
    "cancel_quote": _cancel_quote,
    "advance": _advance,
    "book": _book,
    "behaviour": _set_behaviour,
}


# ---------------------------------------------------------------------- checks


def _same(expected: object, actual: object) -> bool:
    if isinstance(actual, Decimal):
        return actual == expected_number(expected)
    if hasattr(actual, "value") and not isinstance(actual, str | int):  # enums
        return str(getattr(actual, "value", actual)) == str(expected)
    return str(actual) == str(expected)


def _compare(state: ScenarioRun, where: str, expected: Mapping[str, Any], actual: object) -> None:
    """Compare the fields `expected` names; `<name>_contains` checks a substring."""
    for key, want in expected.items():
        if key in ("to", "type"):
            continue
        path = f"{where}.{key}"
        if key.endswith("_contains"):
            name = key.removesuffix("_contains")
            got = _field(actual, name)
            if got is None or str(want) not in str(got):
                state.errors.append(f"{path}: expected text containing {want!r}, got {got!r}")
            continue
        if not _has_field(actual, key):
            state.errors.append(f"{path}: {type(actual).__name__} has no field {key!r}")
            continue
        got = _field(actual, key)
        if isinstance(want, list):
            _compare_list(state, path, want, list(got) if got is not None else [])
        elif isinstance(want, dict):
            _compare(state, path, want, got)
        elif got is None and want != "none":
            state.errors.append(f"{path}: expected {want!r}, got None")
        elif got is not None and not _same(want, got):
            state.errors.append(f"{path}: expected {_show(want)}, got {got}")


def _show(want: object) -> str:
    if isinstance(want, str) and want.startswith("="):
        return f"{want} = {expected_number(want)}"
    return str(want)


def _has_field(obj: object, name: str) -> bool:
    return (isinstance(obj, Mapping) and name in obj) or hasattr(obj, name)


def _field(obj: object, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _compare_list(state: ScenarioRun, where: str, expected: list[Any], actual: list[Any]) -> None:
    if len(expected) != len(actual):
        state.errors.append(
            f"{where}: expected {len(expected)} entries, got {len(actual)}: "
            + "; ".join(_brief(a) for a in actual)
        )
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        path = f"{where}[{index}]"
        if isinstance(want, Mapping):
            kind = want.get("type")
            if kind is not None and type(got).__name__ != kind:
                state.errors.append(f"{path}: expected a {kind}, got {_brief(got)}")
                continue
            _compare(state, path, want, got)
        elif not _same(want, got):
            state.errors.append(f"{path}: expected {_show(want)}, got {got}")


def _brief(obj: object) -> str:
    if isinstance(obj, Mapping):
        return "{" + ", ".join(f"{k}={v}" for k, v in obj.items() if k != "lots") + "}"
    if dataclasses.is_dataclass(obj):
        parts = [
            f"{f.name}={getattr(obj, f.name)}"
            for f in dataclasses.fields(obj)
            if f.name not in ("lots", "timestamp")
        ]
        return f"{type(obj).__name__}(" + ", ".join(parts) + ")"
    return str(obj)


def _check(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    where = f"{label}"
    log = state.world.log
    cursor = state.cursor
    # A log's cursor moves only when a check looks at that log: `messages = [...]` lists
    # exactly what was sent since the previous check that listed messages.
    if "messages" in step:
        new_messages = log.messages[cursor.messages :]
        cursor.messages = len(log.messages)
        wanted = step["messages"]
        actual: list[ClientResponse] = [message for _, message in new_messages]
        _compare_list(state, f"{where}: messages", wanted, actual)
        for index, (want, (client, _)) in enumerate(zip(wanted, new_messages, strict=False)):
            if "to" in want and state.client(want["to"]) != client:
                state.errors.append(
                    f"{where}: messages[{index}].to: expected {want['to']}, "
                    f"got {state.name_of(client)}"
                )
    for name in ("exchange_orders", "batches", "mints", "alerts"):
        if name in step or name == "alerts":  # an unexpected alert is always a mismatch
            entries = getattr(log, name)
            new = entries[getattr(cursor, name) :]
            setattr(cursor, name, len(entries))
            _compare_list(state, f"{where}: {name}", step.get(name, []), list(new))
    for order_id, want in step.get("orders", {}).items():
        update = state.updates.get(order_id)
        if update is None:
            state.errors.append(f"{where}: orders.{order_id}: no such order update was created")
            continue
        _compare(state, f"{where}: orders.{order_id}", want, _update_view(update))
    for name, want in step.get("collateral", {}).items():
        _compare(state, f"{where}: collateral.{name}", want, _ledger_view(state, name))
    minted = state.world.chain.minted
    for name, per_symbol in step.get("minted", {}).items():
        for symbol, want in per_symbol.items():
            got = minted.get((state.client(name), Symbol(symbol)), Decimal(0))
            if not _same(want, got):
                state.errors.append(
                    f"{where}: minted.{name}.{symbol}: expected {_show(want)}, got {got}"
                )
    for asset, want in step.get("inventory", {}).items():
        _compare(state, f"{where}: inventory.{asset}", want, _inventory_view(state, asset))


def _update_view(update: OrderUpdate) -> dict[str, Any]:
    return {
        "status": update.status,
        "amount": update.amount,
        "management_fee": update.management_fee,
        "net_amount": update.net_amount,
        "engaged": update.engaged,
        "engaged_quantity": update.engaged_quantity,
        "spent": update.spent,
        "remaining": update.remaining,
        "assets_value": update.assets_value,
        "exchange_fee": update.exchange_fee,
        "filled_quantity": update.filled_quantity,
        "fill_rate": update.fill_rate,
        "batch_id": update.batch_id,
        "payment_id": update.payment_id,
        "reason": update.reason,
    }


def _ledger_view(state: ScenarioRun, name: str) -> dict[str, Any]:
    collateral = state.world.engine.collateral
    client = state.client(name)
    ledger = collateral.ledger(client)
    return {
        "deposited": ledger.deposited,
        "fees": ledger.fees,
        "spent": ledger.spent,
        "unspent": collateral.unspent(client),
        "ready": ledger.ready_available(),
        "in_transit": ledger.in_transit(),
        "reserved": sum((r.net - r.spent for r in ledger.reservations.values()), Decimal(0)),
        "reservations": len(ledger.reservations),
    }


def _inventory_view(state: ScenarioRun, asset: str) -> dict[str, Any]:
    lots = state.world.engine.inventory.lots(Symbol(asset))
    return {
        "lots": [
            {
                "lot_id": lot.lot_id,
                "price": lot.price,
                "quantity": lot.quantity,
                "fee": lot.fee,
                "assigned": lot.assigned,
                "free": lot.free,
            }
            for lot in lots
        ],
        "quantity": sum((lot.quantity for lot in lots), Decimal(0)),
        "assigned": sum((lot.assigned for lot in lots), Decimal(0)),
        "free": sum((lot.free for lot in lots), Decimal(0)),
    }


_STEP_RUNNERS["check"] = _check


def scenario_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.toml"))

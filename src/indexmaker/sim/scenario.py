"""Scenario files: a TOML story of the buy side, run on the simulated world and checked.

A scenario states the configuration, baskets, books, venue behaviour and bridge fees, then a
timeline of steps. Action steps drive the world (deposit, order, cancel, quote, advance the
clock, change a book or a symbol's behaviour); `check` steps compare what happened since the
previous check of the same log (client messages, exchange orders, batches, mints, alerts;
an alert nobody expected is always a mismatch) and the state now
(order updates, collateral ledgers, minted totals, inventory) with exact Decimal figures.

Expected numbers are decimal strings compared exactly (numerically: "2" equals "2.000000"),
or `=expr`: arithmetic evaluated on the project's Decimal context with + - * /, min, max,
and the report roundings usdc(x), idx(x), rate(x), up(x, step), down(x, step). An expression
lets a scenario write a figure as the derivation it comes from, evaluated independently of the
engine. Everything runs on the manual clock: no sleeping, no sockets.

This module plays the timeline; scenario_build.py reads the file and builds the world,
scenario_checks.py compares what a check expects with what happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from indexmaker.core.events import (
    CancelIndexOrderRequest,
    CancelQuoteRequest,
    NewIndexOrderRequest,
    NewQuoteRequest,
)
from indexmaker.core.ids import ClientOrderId, ClientQuoteId, Symbol, instrument
from indexmaker.core.money import money_context
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceWeight
from indexmaker.model.side import Side
from indexmaker.sim.scenario_build import (
    CHAIN_ID,
    Scenario,
    ScenarioError,
    ScenarioRun,
    behaviour,
    build,
    default_address,
    duration,
    levels,
    number,
    solver_config,
)
from indexmaker.sim.scenario_checks import ScenarioMismatch, check, evaluate, expected_number

# Reading/building and checking live beside this module; this is the scenarios' import point.
__all__ = [
    "CHAIN_ID",
    "Scenario",
    "ScenarioError",
    "ScenarioMismatch",
    "ScenarioRun",
    "build",
    "default_address",
    "duration",
    "evaluate",
    "expected_number",
    "run",
    "scenario_files",
    "solver_config",
]

_ACTIONS = (
    "deposit",
    "order",
    "cancel",
    "quote",
    "cancel_quote",
    "advance",
    "book",
    "behaviour",
    "rebalance",
    "check",
)


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
    state.world.deposit(state.client(step["deposit"]), number(step["amount"]))


def _order(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    client = state.client(step["order"])
    order_id = ClientOrderId(str(step["id"]))
    side = Side.SELL if str(step.get("side", "buy")).lower() == "sell" else Side.BUY
    floor = number(step["min_proceeds"]) if "min_proceeds" in step else None
    symbol = Symbol(step["symbol"])
    state.world.submit(
        NewIndexOrderRequest(client, order_id, symbol, side, number(step["amount"]), floor)
    )
    redemption = state.world.engine.redemptions.get(client, order_id)
    if redemption is not None:
        state.redemptions.setdefault(order_id, redemption)
    update = state.world.engine.orders.update(client, order_id)
    if update is not None and order_id not in state.updates:
        state.updates[order_id] = update


def _cancel(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    request = CancelIndexOrderRequest(
        state.client(step["cancel"]),
        ClientOrderId(str(step["id"])),
        Symbol(step["symbol"]),
        number(step["amount"]),
    )
    state.world.submit(request)


def _quote(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    request = NewQuoteRequest(
        state.client(step["quote"]),
        ClientQuoteId(str(step["id"])),
        Symbol(step["symbol"]),
        Side.BUY,
        number(step["amount"]),
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
    symbol = instrument(step["book"])
    exchange = state.world.exchange
    bids, asks = levels(step.get("bids", [])), levels(step.get("asks", []))
    book = exchange.books.get(symbol)
    if book is None:
        raise ScenarioError(f"unknown book {symbol}")
    book.apply_snapshot(bids, asks)
    for snapshot in exchange.snapshots():
        if snapshot.instrument == symbol:
            state.world.submit(snapshot)


def _rebalance(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    """A curator update: `rebalance = "IDX"`, `weights = { PAIR = "percent", ... }`."""
    weights = tuple(
        RebalanceWeight(instrument(pair), number(weight))
        for pair, weight in step.get("weights", {}).items()
    )
    proposal = str(step.get("proposal", f"{step['rebalance']}-{label}"))
    state.world.submit(RebalanceIndex(Symbol(step["rebalance"]), proposal, weights))


def _set_behaviour(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
    raw = {k: v for k, v in step.items() if k != "behaviour"}
    state.world.exchange.behaviour[instrument(step["behaviour"])] = behaviour(raw)


_STEP_RUNNERS: dict[str, Callable[[ScenarioRun, Mapping[str, Any], str], None]] = {
    "deposit": _deposit,
    "order": _order,
    "cancel": _cancel,
    "quote": _quote,
    "cancel_quote": _cancel_quote,
    "advance": _advance,
    "book": _book,
    "behaviour": _set_behaviour,
    "rebalance": _rebalance,
    "check": check,
}


def scenario_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.toml"))

"""Scenario checks: what a `check` step expects, compared with the world's logs and state.

An expected figure is a decimal string or an `=expr` (the format: scenario.py), evaluated
here on the project's Decimal context, independently of the engine. Every difference found
is recorded in the run's `errors`; none stops the run.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from indexmaker.core.events import ClientResponse
from indexmaker.core.ids import Symbol, instrument
from indexmaker.core.money import (
    money_context,
    round_down_to_step,
    round_index_down,
    round_rate,
    round_up_to_step,
    round_usdc,
)
from indexmaker.model.order import OrderUpdate
from indexmaker.model.redemption import Redemption
from indexmaker.sim.scenario_build import ScenarioError, ScenarioRun, number


class ScenarioMismatch(AssertionError):
    """What happened differs from what the scenario expects; lists every difference."""


# ---------------------------------------------------------------------- expected values


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
    return number(value)


# ---------------------------------------------------------------------- comparing


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


def check(state: ScenarioRun, step: Mapping[str, Any], label: str) -> None:
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
    logs = ("exchange_orders", "batches", "mints", "burns", "payouts", "escrows", "rebalances")
    for name in (*logs, "alerts"):
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
    for order_id, want in step.get("redemptions", {}).items():
        redemption = state.redemptions.get(order_id)
        if redemption is None:
            state.errors.append(f"{where}: redemptions.{order_id}: no such redemption")
            continue
        _compare(state, f"{where}: redemptions.{order_id}", want, _redemption_view(redemption))
    chain = state.world.chain
    for name, want in step.get("paid", {}).items():
        got = chain.paid.get(state.client(name), Decimal(0))
        if not _same(want, got):
            state.errors.append(f"{where}: paid.{name}: expected {_show(want)}, got {got}")
    for label, table in (("custody", chain.custody), ("burned", chain.burned)):
        for symbol, want in step.get(label, {}).items():
            got = table.get(Symbol(symbol), Decimal(0))
            if not _same(want, got):
                state.errors.append(f"{where}: {label}.{symbol}: expected {_show(want)}, got {got}")


def _redemption_view(redemption: Redemption) -> dict[str, Any]:
    return {
        "state": redemption.state,
        "quantity": redemption.quantity,
        "sold": redemption.sold,
        "engaged": redemption.engaged,
        "gross": redemption.gross,
        "exchange_fee": redemption.exchange_fee,
        "net_proceeds": redemption.net_proceeds,
        "burned": redemption.burned,
        "withdrawn": redemption.withdrawn,
        "received": redemption.received,
        "closing": redemption.closing,
        "notice": redemption.notice,
        "pnl": sum((d.pnl for d in redemption.disposals), Decimal(0)),
    }


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
        "engageable": update.engageable,
        "change": update.change,
        "units_engaged": update.units_engaged,
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
    lots = state.world.engine.inventory.lots(instrument(asset))
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

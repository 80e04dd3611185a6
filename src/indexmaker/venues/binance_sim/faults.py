"""Fault injection and test helpers, switched at run time over HTTP (docs/exchange-sim.md).

    POST   /sim/faults   {"skip_updates": {"BTCUSDC": 1}, ...}   switch faults on (or off)
    GET    /sim/faults                                          what is switched on
    DELETE /sim/faults                                          everything off
    GET    /sim/instance                                        {"instance", "pid"}: who answers

A bad body is refused with 400 and `{"error": "<field>: <reason>"}`, changing nothing. The
admin endpoints are for loopback tests: the simulator binds 127.0.0.1 by default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from indexmaker.venues.binance_sim.errors import ApiError
from indexmaker.venues.binance_sim.symbols import STATUSES

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.server import Simulator


class FaultError(ValueError):
    pass


@dataclass(slots=True)
class OrderFaults:
    """Faults on the order path (read by the trading layer)."""

    reject_next: int = 0  # refuse the next N orders (-2010) without executing them
    unknown_next: int = 0  # execute the next N orders but answer as if the outcome is unknown
    unknown_mode: str = "5xx"  # "5xx": HTTP 503 -1007-less body; "-1007": the timeout error
    user_delay_ms: int = 0  # user-data events wait this long before they are sent
    drop_user_events: int = 0  # the next N user-data events are never sent
    result_next: int = 0  # the next N order answers carry no fills (as RESULT): the stream has them
    hold_next: int = 0  # the next N orders stay NEW (cancellable) `hold_ms` before they match
    hold_ms: int = 2000
    rate_limit_next: int = 0  # the next N orders meet 429 -1015, `rate_limit_ms` to wait
    rate_limit_ms: int = 1000


@dataclass(slots=True)
class Faults:
    orders: OrderFaults = field(default_factory=OrderFaults)


def _symbols(sim: Simulator, value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise FaultError(f"{name}: expected a symbol or a list of symbols")
    out = [s.upper() for s in value]
    unknown = [s for s in out if s not in sim.exchange.specs and s != "*"]
    if unknown:
        raise FaultError(f"{name}: unknown symbol {unknown[0]}")
    return out


def _counts(sim: Simulator, value: Any, name: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise FaultError(f"{name}: expected {{symbol: count}}")
    out: dict[str, int] = {}
    for symbol, count in value.items():
        _symbols(sim, symbol, name)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise FaultError(f"{name}.{symbol}: expected an integer >= 0")
        out[symbol.upper()] = count
    return out


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FaultError(f"{name}: expected an integer >= 0")
    return value


def apply_faults(sim: Simulator, body: dict[str, Any]) -> dict[str, Any]:
    """Validate the whole body first, then apply it (a bad field changes nothing)."""
    known = {
        "drop_streams",
        "skip_updates",
        "repeat_updates",
        "snapshot_lag",
        "freeze",
        "unfreeze",
        "symbol_status",
        "delist",
        "maintenance",
        "reject_next_orders",
        "unknown_next_orders",
        "unknown_mode",
        "user_data_delay_ms",
        "drop_user_data",
        "result_next_orders",
        "hold_next_orders",
        "hold_ms",
        "rate_limit_next_orders",
        "rate_limit_ms",
        "server_shutdown",
    }
    extra = sorted(set(body) - known)
    if extra:
        raise FaultError(f"{extra[0]}: unknown fault (known: {', '.join(sorted(known))})")
    plan: list[Any] = []
    market = sim.exchange.faults
    orders = sim.faults.orders
    if "skip_updates" in body:
        counts = _counts(sim, body["skip_updates"], "skip_updates")
        plan.append(lambda: market.skip_updates.update(counts))
    if "repeat_updates" in body:
        repeats = _counts(sim, body["repeat_updates"], "repeat_updates")
        plan.append(lambda: market.repeat_updates.update(repeats))
    if "snapshot_lag" in body:
        lags = _counts(sim, body["snapshot_lag"], "snapshot_lag")
        plan.append(lambda: market.snapshot_lag.update(lags))
    if "freeze" in body:
        frozen = _symbols(sim, body["freeze"], "freeze")
        plan.append(lambda: market.frozen.update(frozen))
    if "unfreeze" in body:
        thawed = _symbols(sim, body["unfreeze"], "unfreeze")
        plan.append(lambda: market.frozen.difference_update(thawed))
    if "symbol_status" in body:
        statuses = body["symbol_status"]
        if not isinstance(statuses, dict):
            raise FaultError("symbol_status: expected {symbol: status}")
        for symbol, status in statuses.items():
            _symbols(sim, symbol, "symbol_status")
            if status not in STATUSES:
                raise FaultError(f"symbol_status.{symbol}: one of {', '.join(STATUSES)}")
        plan.append(lambda: sim.set_status({s.upper(): v for s, v in statuses.items()}))
    if "delist" in body:
        delisted = _symbols(sim, body["delist"], "delist")
        plan.append(lambda: sim.delist(delisted))
    if "maintenance" in body:
        if not isinstance(body["maintenance"], bool):
            raise FaultError("maintenance: expected true or false")
        flag = body["maintenance"]
        plan.append(lambda: setattr(sim, "maintenance", flag))
    if "reject_next_orders" in body:
        n = _count(body["reject_next_orders"], "reject_next_orders")
        plan.append(lambda: setattr(orders, "reject_next", n))
    if "unknown_next_orders" in body:
        m = _count(body["unknown_next_orders"], "unknown_next_orders")
        plan.append(lambda: setattr(orders, "unknown_next", m))
    if "unknown_mode" in body:
        mode = body["unknown_mode"]
        if mode not in ("5xx", "-1007"):
            raise FaultError('unknown_mode: "5xx" or "-1007"')
        plan.append(lambda: setattr(orders, "unknown_mode", mode))
    if "user_data_delay_ms" in body:
        delay = _count(body["user_data_delay_ms"], "user_data_delay_ms")
        plan.append(lambda: setattr(orders, "user_delay_ms", delay))
    if "drop_user_data" in body:
        dropped = _count(body["drop_user_data"], "drop_user_data")
        plan.append(lambda: setattr(orders, "drop_user_events", dropped))
    for name, attribute in (
        ("result_next_orders", "result_next"),
        ("hold_next_orders", "hold_next"),
        ("hold_ms", "hold_ms"),
        ("rate_limit_next_orders", "rate_limit_next"),
        ("rate_limit_ms", "rate_limit_ms"),
    ):
        if name in body:
            value = _count(body[name], name)
            plan.append(lambda attribute=attribute, value=value: setattr(orders, attribute, value))
    result: dict[str, Any] = {}
    if "drop_streams" in body:
        targets = _symbols(sim, body["drop_streams"], "drop_streams")
        plan.append(
            lambda: result.update(
                dropped_connections=sum(sim.hub.drop(None if s == "*" else s) for s in targets)
            )
        )
    if body.get("server_shutdown"):
        plan.append(lambda: result.update(shutdown_sent=sim.announce_shutdown()))
    for step in plan:
        step()
    return result


def describe(sim: Simulator) -> dict[str, Any]:
    market = sim.exchange.faults
    orders = sim.faults.orders
    return {
        "skip_updates": {k: v for k, v in market.skip_updates.items() if v},
        "repeat_updates": {k: v for k, v in market.repeat_updates.items() if v},
        "snapshot_lag": {k: v for k, v in market.snapshot_lag.items() if v},
        "frozen": sorted(market.frozen),
        "maintenance": sim.maintenance,
        "symbol_status": {
            s: spec.status for s, spec in sim.exchange.specs.items() if spec.status != "TRADING"
        },
        "reject_next_orders": orders.reject_next,
        "unknown_next_orders": orders.unknown_next,
        "unknown_mode": orders.unknown_mode,
        "user_data_delay_ms": orders.user_delay_ms,
        "drop_user_data": orders.drop_user_events,
        "result_next_orders": orders.result_next,
        "hold_next_orders": orders.hold_next,
        "hold_ms": orders.hold_ms,
        "rate_limit_next_orders": orders.rate_limit_next,
        "rate_limit_ms": orders.rate_limit_ms,
    }


def clear(sim: Simulator) -> None:
    market = sim.exchange.faults
    market.skip_updates.clear()
    market.repeat_updates.clear()
    market.snapshot_lag.clear()
    market.frozen.clear()
    sim.maintenance = False
    sim.faults.orders = OrderFaults()


def admin_routes(sim: Simulator, app: web.Application) -> None:
    async def post(request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read())
            if not isinstance(body, dict):
                raise FaultError("body: expected a JSON object")
            result = apply_faults(sim, body)
        except (FaultError, msgspec.DecodeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"ok": True, **result, "faults": describe(sim)})

    async def get(request: web.Request) -> web.Response:
        return web.json_response(describe(sim))

    async def delete(request: web.Request) -> web.Response:
        clear(sim)
        return web.json_response({"ok": True, "faults": describe(sim)})

    async def deposit(request: web.Request) -> web.Response:
        """A deposit arriving on chain: {"coin", "amount", "account"?, "network"?, "txId"?}."""
        try:
            body = msgspec.json.decode(await request.read())
            if not isinstance(body, dict):
                raise FaultError("body: expected a JSON object")
            account = str(body.get("account", "main"))
            if account not in sim.trading.accounts:
                raise FaultError(f"account: unknown account {account!r}")
            coin = str(body.get("coin", "")).upper()
            try:
                amount = Decimal(str(body.get("amount", "")))
            except InvalidOperation:
                raise FaultError("amount: not a decimal number") from None
            if not amount.is_finite() or amount <= 0:
                raise FaultError("amount: must be > 0")
            network = body.get("network")
            transfer = sim.wallet.deposit(account, coin, amount, network, body.get("txId"))
        except (FaultError, msgspec.DecodeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        except ApiError as error:
            return web.json_response({"error": f"coin/network: {error.msg}"}, status=400)
        return web.json_response({"ok": True, "id": transfer.ident, "txId": transfer.tx_id})

    async def instance(request: web.Request) -> web.Response:
        """This process's random instance id and PID: a parent that recorded them adopts a
        simulator it started earlier only when both match (app/local_peers.py)."""
        return web.json_response({"instance": sim.instance, "pid": os.getpid()})

    app.router.add_get("/sim/instance", instance)
    app.router.add_post("/sim/deposit", deposit)
    app.router.add_post("/sim/faults", post)
    app.router.add_get("/sim/faults", get)
    app.router.add_delete("/sim/faults", delete)

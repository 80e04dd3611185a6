"""The read-only query API (issue 10): HTTP JSON on its own port (127.0.0.1:3001 by default),
its OpenAPI 3.1 schema at `/openapi.json` and a Swagger UI page at `/docs`.

aiohttp serves it (the FIX server's library, docs/decisions.md); pydantic models give the
response shapes and their JSON Schema; each route's parameters are declared once
(query/params.py) and both check requests and describe them. Every answer is JSON: a bad
parameter is a 400 `{"error": "limit: …"}`, an unknown client or order a 404, and a failure
inside one request a 500 that is logged and never stops the service. Only GET is served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from indexmaker.app.health import HealthReport
from indexmaker.core.ids import client_key
from indexmaker.core.ports import StorePort
from indexmaker.core.store_records import InvoiceQuery, OrderQuery
from indexmaker.core.venue_events import ExchangeOrderStatus
from indexmaker.engine.engine import Engine
from indexmaker.model.order import OrderStatus
from indexmaker.model.redemption import RedemptionState
from indexmaker.observability.logging import log_event
from indexmaker.query import history, models, views
from indexmaker.query.history import Unavailable
from indexmaker.query.params import PAGING, BadRequest, Param, parse
from indexmaker.server.listener import Handshakes, listen

Handler = Callable[[dict[str, Any]], Awaitable[BaseModel | None]]
CLIENT = (
    Param("chain_id", "int", "the client's chain", minimum=1, maximum=2**32 - 1),
    Param("address", "address", "the client's address (any case)"),
)
IN_PATH = (
    *(Param(p.name, p.kind, p.description, where="path") for p in CLIENT),
    Param("client_order_id", "str", "the order update's id", where="path"),
)
INSTRUMENT = (
    Param("venue", "str", "a venue, e.g. binance"),
    Param("pair", "str", "the venue's pair, e.g. BTCUSDC"),
)


@dataclass(frozen=True, slots=True)
class QueryApiConfig:
    """`[api]` settings: off, or where to listen (loopback by default: it shows every client's
    balances, so exposing it is the operator's decision)."""

    enable: bool = True
    host: str = "127.0.0.1"
    port: int = 3001  # 0: any free port
    # Every connection costs a file descriptor: a source holds at most this many at once, and
    # each is closed this many seconds after accept (a half-sent request or an idle keep-alive
    # would otherwise hold its descriptor for ever; a client simply reconnects).
    max_connections_per_source: int = 32
    connection_lifetime_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    summary: str
    response: type[BaseModel]
    handler: Handler
    params: Sequence[Param] = ()
    tag: str = "state"


class OrderDetail(BaseModel):
    """An order as the engine holds it (a buy's update or an open sell), its invoice once
    minted (a buy) or redeemed (a sell), and its record as the store keeps it (durable)."""

    order: models.OrderUpdate | None
    invoice: models.Invoice | None
    record: models.OrderRecord | None = None
    redemption: models.RedemptionInvoice | None = None


@dataclass
class QueryApi:
    config: QueryApiConfig
    engine: Engine
    quiet: Callable[[], Awaitable[None]]  # Runtime.quiet: the engine is between steps
    health: Callable[[], HealthReport]  # Runtime.health
    store: StorePort | None = None  # the durable store (invoices); None: none
    store_name: str = "memory"  # its backend, for /v1/health
    app: web.Application = field(init=False)
    _runner: web.AppRunner | None = field(default=None, init=False)
    _listener: asyncio.Server | None = field(default=None, init=False)
    url: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.routes = self._routes()
        self.app = web.Application(middlewares=[_json_errors])
        for route in self.routes:
            self.app.router.add_get(route.path, self._endpoint(route))
        self.app.router.add_get("/openapi.json", self._openapi)
        self.app.router.add_get("/docs", self._docs)
        self.app.router.add_static("/docs/static", _swagger_ui_path())
        self._schema: dict[str, Any] | None = None

    async def start(self) -> None:
        """Listen (OSError if the host/port cannot be bound), behind the FIX edge's gate:
        connections capped per source and closed at their lifetime (server/listener.py)."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        lifetimes = Handshakes(
            self.config.max_connections_per_source, self.config.connection_lifetime_seconds
        )
        try:
            self._listener = await listen(
                runner, self.config.host, self.config.port, _never_refused, lifetimes
            )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = self._listener.sockets[0].getsockname()[1]
        self.url = f"http://{self.config.host}:{port}"
        log_event("query_api_started", url=self.url)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ routes

    def _routes(self) -> list[Route]:
        def state(read: Callable[[Engine, dict[str, Any]], BaseModel | None]) -> Handler:
            async def handler(values: dict[str, Any]) -> BaseModel | None:
                await self.quiet()
                return read(self.engine, values)  # synchronous: no tick can interleave

            return handler

        invoices, redemptions, order_history, batch_history = history.handlers(self.store)
        return [
            Route("/health", "Liveness and the store's progress", models.Health, self._health,
                  tag="service"),
            Route("/v1/collateral", "Collateral positions of every client",
                  models.Page[models.CollateralPosition], state(views.positions),
                  (*CLIENT, *PAGING), tag="collateral"),
            Route("/v1/collateral/{chain_id}/{address}",
                  "One client's collateral: balances, lots, reservations",
                  models.ClientCollateral, state(_one_client), IN_PATH[:2], tag="collateral"),
            Route("/v1/inventory", "Inventory per instrument: lots held, free quantity",
                  models.Page[models.InventorySummary], state(views.inventory),
                  (*INSTRUMENT, *PAGING), tag="inventory"),
            Route("/v1/inventory/lots", "Inventory lots with their assignments",
                  models.Page[models.InventoryLot], state(views.lots),
                  (*INSTRUMENT, Param("free_only", "bool", "only lots with free quantity"),
                   *PAGING), tag="inventory"),
            Route("/v1/orders", "Orders the engine holds (buys' updates, open sells), with "
                  "their state",
                  models.Page[models.OrderUpdate], state(views.orders),
                  (*CLIENT, Param("symbol", "str", "an index, e.g. SY100"),
                   Param("status", "enum", "the update's state", choices=ORDER_STATES),
                   *PAGING), tag="orders"),
            Route("/v1/orders/{chain_id}/{address}/{client_order_id}",
                  "One order: its state now, its record, and its invoice once minted or "
                  "redeemed",
                  OrderDetail, self._order, IN_PATH, tag="orders"),
            Route("/v1/order-history",
                  "Every order the store kept, closed and old ones too (durable)",
                  models.Page[models.OrderRecord], order_history,
                  (*CLIENT, *history.ORDER_PARAMS), tag="orders"),
            Route("/v1/rebalances", "Rebalances of indexes in progress and done (issue 12)",
                  models.Page[models.Rebalance], state(views.rebalances), PAGING,
                  tag="execution"),
            Route("/v1/batches", "Batches in flight", models.Page[models.Batch],
                  state(views.batches), PAGING, tag="execution"),
            Route("/v1/batch-history",
                  "Every batch the store kept, completed ones too (durable)",
                  models.Page[models.BatchRecord], batch_history, history.BATCH_PARAMS,
                  tag="execution"),
            Route("/v1/exchange-orders", "Exchange orders (open, and recent final ones)",
                  models.Page[models.ExchangeOrder], state(views.exchange_orders),
                  (*INSTRUMENT, Param("status", "enum", "the order's state",
                                      choices=EXCHANGE_STATES),
                   Param("batch_id", "int", "the batch it belongs to", minimum=1), *PAGING),
                  tag="execution"),
            Route("/v1/invoices", "Mint invoices by client and by time range (durable)",
                  models.Page[models.Invoice], invoices,
                  (*CLIENT, Param("symbol", "str", "an index, e.g. SY100"),
                   Param("from", "time", "minted at or after (ISO 8601 with timezone)"),
                   Param("to", "time", "minted before (ISO 8601 with timezone)"), *PAGING),
                  tag="invoices"),
            Route("/v1/redemptions",
                  "Redemption invoices (sells: burns, lots, payout) by client and by time "
                  "range (durable)",
                  models.Page[models.RedemptionInvoice], redemptions,
                  (*CLIENT, Param("symbol", "str", "an index, e.g. SY100"),
                   Param("from", "time", "invoiced at or after (ISO 8601 with timezone)"),
                   Param("to", "time", "invoiced before (ISO 8601 with timezone)"), *PAGING),
                  tag="invoices"),
        ]  # fmt: skip

    def _endpoint(self, route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            try:
                values = parse(route.params, request.query)
                for param in route.params:
                    if param.where == "path":
                        values[param.name] = param.parse(request.match_info[param.name])
                answer = await route.handler(values)
            except BadRequest as error:
                return _error(400, str(error))
            except Unavailable as error:
                return _error(503, str(error))
            if answer is None:
                return _error(404, f"{request.path}: not found")
            status = 503 if isinstance(answer, models.Health) and answer.status != "ok" else 200
            return web.Response(
                body=answer.model_dump_json(), status=status, content_type="application/json"
            )

        return endpoint

    async def _health(self, _values: dict[str, Any]) -> models.Health:
        report = self.health()
        store = self.engine.journal
        return models.Health(
            status="ok" if report.healthy else "unhealthy",
            problems=list(report.problems),
            engine_alive=report.engine_alive,
            loop_lag_ms=round(report.loop_lag_seconds * 1000, 3),
            queue_depth=report.queue_depth,
            queue_capacity=report.queue_capacity,
            store=self.store_name,
            journal_seq=int(getattr(store, "last_seq", 0)),
        )

    async def _order(self, values: dict[str, Any]) -> OrderDetail | None:
        client = client_key(values["chain_id"], values["address"])
        order_id = values["client_order_id"]
        await self.quiet()
        held = self.engine.orders.update(client, order_id) or self.engine.redemptions.get(
            client, order_id
        )
        detail = OrderDetail(order=None if held is None else views.held_view(held), invoice=None)
        if self.store is not None:
            store = self.store
            query = InvoiceQuery(client=client, client_order_id=order_id, limit=1)
            minted = await asyncio.to_thread(store.invoices, query)
            redeemed = await asyncio.to_thread(store.redemptions, query)
            which = OrderQuery(client=client, client_order_id=order_id, limit=1)
            kept = await asyncio.to_thread(store.orders, which)
            detail = OrderDetail(
                order=detail.order,
                invoice=views.invoice(client, minted[0].invoice) if minted else None,
                record=history.order_record(kept[0]) if kept else None,
                redemption=views.redemption(client, redeemed[0].invoice) if redeemed else None,
            )
        if detail == OrderDetail(order=None, invoice=None):
            return None
        return detail

    # ------------------------------------------------------------------ schema and docs

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every route (built once)."""
        if self._schema is None:
            self._schema = build_openapi(self.routes)
        return self._schema

    async def _openapi(self, _request: web.Request) -> web.Response:
        return web.json_response(self.openapi())

    async def _docs(self, _request: web.Request) -> web.Response:
        return web.Response(text=DOCS_PAGE, content_type="text/html")


def _never_refused(source: str) -> bool:
    return False  # the API refuses no source outright; it only caps and times connections


def _one_client(engine: Engine, values: dict[str, Any]) -> models.ClientCollateral | None:
    return views.client_collateral(engine, client_key(values["chain_id"], values["address"]))


def build_openapi(routes: Sequence[Route]) -> dict[str, Any]:
    out: Literal["serialization"] = "serialization"  # the shapes the API writes
    shapes = [(r.response, out) for r in routes] + [(models.ApiError, out)]
    refs, defs = models_json_schema(shapes, ref_template="#/components/schemas/{model}")
    paths: dict[str, Any] = {}
    for route in routes:
        ok = refs[(route.response, "serialization")]
        error = {
            "content": {"application/json": {"schema": refs[(models.ApiError, "serialization")]}}
        }
        responses: dict[str, Any] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": ok}}},
            "400": {"description": "a bad parameter, named in `error`", **error},
        }
        if "{" in route.path:
            responses["404"] = {"description": "no such client or order", **error}
        if route.response is models.Health:
            responses["503"] = {
                "description": "unhealthy (same body)",
                "content": {"application/json": {"schema": ok}},
            }
        paths[route.path] = {
            "get": {
                "summary": route.summary,
                "tags": [route.tag],
                "operationId": route.path.strip("/")
                .replace("/", "_")
                .replace("{", "")
                .replace("}", "")
                or "root",
                "parameters": [
                    {
                        "name": p.name,
                        "in": p.where,
                        "required": p.where == "path",
                        "description": p.description,
                        "schema": p.schema(),
                    }
                    for p in route.params
                ],
                "responses": responses,
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Index Maker query API",
            "version": "1",
            "description": "Read-only state of the solver service. Money and quantities are "
            "decimal strings; listings are pages of `limit` items, continued with `cursor`.",
        },
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {})},
    }


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error(error.status, f"{request.method} {request.path}: {error.reason}")
    except Exception as error:  # one request's failure never stops the service
        log_event("query_api_error", logging.ERROR, path=request.path, error=error)
        return _error(500, f"{request.path}: internal error")


def _error(status: int, reason: str) -> web.Response:
    return web.Response(
        body=models.ApiError(error=reason).model_dump_json(),
        status=status,
        content_type="application/json",
    )


def _swagger_ui_path() -> Path:
    import swagger_ui_bundle  # type: ignore[import-untyped]  # Swagger UI's own files, served locally (no CDN)

    return Path(str(swagger_ui_bundle.swagger_ui_path))


# A buy's update states, then those of a sell (a redemption) not already among them.
ORDER_STATES = tuple(
    dict.fromkeys([*(s.value for s in OrderStatus), *(s.value for s in RedemptionState)])
)
EXCHANGE_STATES = tuple(s.value for s in ExchangeOrderStatus)
DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Index Maker query API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""

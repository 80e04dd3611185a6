"""Read models of the query API, built from the live engine's ledgers (one owner each; these
functions only read) and from the store's invoice table.

Call them on the event loop right after `Runtime.quiet()`: nothing here awaits, so a tick
cannot change the engine in the middle of one (app/runtime.py). What the engine no longer
holds is not here: a finished order update leaves the engine (its invoice stays queryable),
a completed batch is forgotten, and at most `RETIRED_ORDERS` final exchange orders are kept.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from indexmaker.core.events import MintInvoice
from indexmaker.core.ids import ClientKey, client_key
from indexmaker.core.money import round_usdc, round_usdc_down
from indexmaker.core.redemption_events import RedemptionInvoice
from indexmaker.engine.engine import Engine
from indexmaker.engine.tracker import TrackedOrder
from indexmaker.model.lot import Lot
from indexmaker.model.order import OrderUpdate
from indexmaker.model.redemption import Redemption
from indexmaker.query import models
from indexmaker.query.params import BadRequest, page
from indexmaker.server.encoding import response_body

Values = dict[str, Any]
ZERO = Decimal(0)
M = TypeVar("M", bound=BaseModel)


def build(model: type[M], source: object, **given: Any) -> M:
    """A read model from `source`'s attributes of the same names, `given` for the others
    (the models name their fields as the ledgers do; a field neither has is an error)."""
    names = model.model_fields.keys() - given.keys()
    return model(**{name: getattr(source, name) for name in names}, **given)


def client_view(model: type[M], source: Any, **given: Any) -> M:
    """`build` of a client's record: its chain id and address from `source.client`."""
    return build(model, source, chain_id=source.client[0], address=source.client[1], **given)


def _client_filter(values: Values) -> tuple[int | None, str | None]:
    return values.get("chain_id"), values.get("address")


def _matches(client: ClientKey, values: Values) -> bool:
    chain_id, address = _client_filter(values)
    return (chain_id is None or client[0] == chain_id) and (address is None or client[1] == address)


def position(engine: Engine, client: ClientKey) -> models.CollateralPosition:
    ledger = engine.collateral.ledger(client)
    balances = engine.collateral.position(client)
    return models.CollateralPosition(
        chain_id=client[0],
        address=client[1],
        deposited=round_usdc(ledger.deposited),
        fees=round_usdc(ledger.fees),
        unconfirmed=balances.unconfirmed,
        ready=balances.ready,
        preauth=balances.preauth,
        spent=balances.spent,
        held=balances.held,
    )


def positions(engine: Engine, values: Values) -> models.Page[models.CollateralPosition]:
    """Every client with collateral, by (chain_id, address)."""
    clients = [c for c in engine.collateral.clients() if _matches(c, values)]
    chosen, cursor = page(clients, lambda c: (c[0], c[1]), (int, str), values)
    return models.Page(items=[position(engine, c) for c in chosen], next_cursor=cursor)


def client_collateral(engine: Engine, client: ClientKey) -> models.ClientCollateral | None:
    """One client's balances, lots and reservations; None for a client never seen."""
    if client not in engine.collateral.clients():
        return None
    ledger = engine.collateral.ledger(client)
    transit = engine.router.transit_notes()
    lots = [
        models.CollateralLot(
            seq_num=lot.seq_num,
            gross=lot.gross,
            location=lot.location,
            fee=lot.fee,
            ready=lot.ready,
            available=lot.available,
            hops=list(lot.hops),
            held=lot.held,
            transit=transit.get(id(lot), ""),
        )
        for lot in ledger.lots
    ]
    reservations = [
        models.Reservation(client_order_id=order_id, gross=r.gross, fee=r.fee, spent=r.spent)
        for order_id, r in sorted(ledger.reservations.items())
    ]
    return models.ClientCollateral(
        **position(engine, client).model_dump(), lots=lots, reservations=reservations
    )


def _instrument_matches(venue: str, pair: str, values: Values) -> bool:
    return bool(values.get("venue", venue) == venue and values.get("pair", pair) == pair)


def inventory(engine: Engine, values: Values) -> models.Page[models.InventorySummary]:
    """Per instrument: the lots held and what of them is free (issuer inventory)."""
    rows = []
    for asset in engine.inventory.assets():
        if not _instrument_matches(asset.venue, asset.pair, values):
            continue
        lots = engine.inventory.lots(asset)
        rows.append(
            models.InventorySummary(
                venue=asset.venue,
                pair=asset.pair,
                lots=len(lots),
                quantity=sum((lot.quantity for lot in lots), ZERO),
                free=engine.inventory.free_quantity(asset, unreserved_only=False),
            )
        )
    chosen, cursor = page(rows, lambda r: (r.venue, r.pair), (str, str), values)
    return models.Page(items=chosen, next_cursor=cursor)


def _lot(lot: Lot) -> models.InventoryLot:
    return build(
        models.InventoryLot,
        lot,
        venue=lot.asset.venue,
        pair=lot.asset.pair,
        free=lot.free,
        reserved_by_batch=lot.reserved_by,
        assignments=[build(models.LotAssignment, a) for a in lot.assignments],
    )


def lots(engine: Engine, values: Values) -> models.Page[models.InventoryLot]:
    """Inventory lots by lot id; `free_only`: only lots with free quantity."""
    held: list[Lot] = []
    for asset in engine.inventory.assets():
        if _instrument_matches(asset.venue, asset.pair, values):
            held.extend(engine.inventory.lots(asset))
    if values.get("free_only"):
        held = [lot for lot in held if lot.free > 0]
    chosen, cursor = page(held, lambda lot: (int(lot.lot_id),), (int,), values)
    return models.Page(items=[_lot(lot) for lot in chosen], next_cursor=cursor)


def order_update(update: OrderUpdate) -> models.OrderUpdate:
    return client_view(
        models.OrderUpdate,
        update,
        side=update.side.value,
        status=update.status.value,
        proceeds=None,
    )


def sell_update(sell: Redemption) -> models.OrderUpdate:
    """An open sell (a redemption the engine holds) in the order updates' shape."""
    return client_view(
        models.OrderUpdate,
        sell,
        side=sell.side.value,
        status=sell.state.value,
        amount=sell.quantity,
        management_fee=ZERO,
        spent=ZERO,
        remaining=max(sell.quantity - sell.sold, ZERO),
        filled_quantity=sell.sold,
        fill_rate=sell.fill_rate,
        payment_id=sell.redemption_id,
        last_fill_at=None,
        reason=sell.closing,
        proceeds=round_usdc_down(sell.net_proceeds),
    )


def orders(engine: Engine, values: Values) -> models.Page[models.OrderUpdate]:
    """Order updates the engine holds (not yet finished): buys and open sells, by arrival."""
    held: list[tuple[int, OrderUpdate | Redemption]] = [
        *((u.arrival, u) for u in engine.orders.all_updates()),
        *((r.arrival, r) for r in engine.redemptions.open_redemptions()),
    ]
    wanted = [
        (arrival, order)
        for arrival, order in held
        if _matches(order.client, values)
        and values.get("symbol", order.symbol) == order.symbol
        and values.get("status", view_status(order)) == view_status(order)
    ]
    chosen, cursor = page(wanted, lambda pair: (pair[0],), (int,), values)
    return models.Page(items=[held_view(o) for _, o in chosen], next_cursor=cursor)


def view_status(order: OrderUpdate | Redemption) -> str:
    return order.state.value if isinstance(order, Redemption) else order.status.value


def held_view(order: OrderUpdate | Redemption) -> models.OrderUpdate:
    return sell_update(order) if isinstance(order, Redemption) else order_update(order)


def batches(engine: Engine, values: Values) -> models.Page[models.Batch]:
    """Batches in flight, by batch id."""
    rows = [
        build(
            models.Batch,
            batch,
            open_exchange_orders=batch.open_orders,
            symbols=sorted(batch.groups),
            client_order_ids=[e.update.client_order_id for e in batch.entries()],
            assets=[
                build(
                    models.BatchAsset,
                    p,
                    venue=p.instrument.venue,
                    pair=p.instrument.pair,
                    exchange_orders=list(p.order_ids),
                )
                for _, p in sorted(batch.positions.items())
            ],
        )
        for batch in engine.batches.open_batches()
    ]
    chosen, cursor = page(rows, lambda b: (b.batch_id,), (int,), values)
    return models.Page(items=chosen, next_cursor=cursor)


def rebalances(engine: Engine, values: Values) -> models.Page[models.Rebalance]:
    """Rebalances in progress and done, by index and basket version."""
    manager = engine.rebalance
    rows = []
    for rebalance in [*manager.finished, *manager.active.values()]:
        quantity = {a.instrument: a.quantity for a in rebalance.target.assets}
        assets = [
            build(
                models.RebalanceAsset,
                a,
                venue=a.instrument.venue,
                pair=a.instrument.pair,
                target_quantity=quantity.get(a.instrument, ZERO),
            )
            for _, a in sorted(rebalance.assets.items())
        ]
        rows.append(
            build(
                models.Rebalance,
                rebalance,
                symbol=rebalance.target.symbol,
                exchange_orders=rebalance.orders,
                assets=assets,
            )
        )
    chosen, cursor = page(rows, lambda r: (r.symbol, r.version), (str, int), values)
    return models.Page(items=chosen, next_cursor=cursor)


def _order_key(order: TrackedOrder) -> tuple[int, str]:
    # "im-2" before "im-10": our ids are numbered, compare by length first.
    return (len(order.order_id), order.order_id)


def exchange_orders(engine: Engine, values: Values) -> models.Page[models.ExchangeOrder]:
    """Exchange orders tracked now and the final ones still kept, by our client order id."""
    wanted = [
        o
        for o in engine.tracker.all_orders()
        if values.get("status", o.status.value) == o.status.value
        and values.get("batch_id", o.batch_id) == o.batch_id
        and _instrument_matches(o.command.instrument.venue, o.command.instrument.pair, values)
    ]
    chosen, cursor = page(wanted, _order_key, (int, str), values)
    items = [
        build(
            models.ExchangeOrder,
            o,
            venue=o.command.instrument.venue,
            pair=o.command.instrument.pair,
            side=o.command.side.value,
            price=o.command.price,
            quantity=o.command.quantity,
            status=o.status.value,
            trades=len(o.trade_ids),
        )
        for o in chosen
    ]
    return models.Page(items=items, next_cursor=cursor)


def invoice(client: ClientKey, invoice: MintInvoice) -> models.Invoice:
    return build(
        models.Invoice,
        invoice,
        chain_id=client[0],
        address=client[1],
        minted_at=invoice.timestamp,
        # As the FIX frame carries it (server/encoding.py), without header and trailer.
        body={"chain_id": client[0], "address": client[1], **response_body(invoice)[2]},
        lots=[
            build(models.InvoiceLot, lot, venue=lot.asset.venue, pair=lot.asset.pair)
            for lot in invoice.lots
        ],
    )


def redemption(client: ClientKey, invoice: RedemptionInvoice) -> models.RedemptionInvoice:
    return build(
        models.RedemptionInvoice,
        invoice,
        chain_id=client[0],
        address=client[1],
        redeemed_at=invoice.timestamp,
        burns=[build(models.RedemptionBurn, burn) for burn in invoice.burns],
        lots=[
            build(models.RedemptionLot, lot, venue=lot.asset.venue, pair=lot.asset.pair)
            for lot in invoice.lots
        ],
    )


def client_of(values: Values) -> ClientKey | None:
    """The (chain_id, address) filter; both or neither (an address is per chain)."""
    chain_id, address = _client_filter(values)
    if (chain_id is None) != (address is None):
        raise BadRequest("chain_id: give chain_id and address together (an address is per chain)")
    return None if chain_id is None or address is None else client_key(chain_id, address)

"""Read models of the query API, built from the live engine's ledgers (one owner each; these
functions only read) and from the store's invoice table.

Call them on the event loop right after `Runtime.quiet()`: nothing here awaits, so a tick
cannot change the engine in the middle of one (app/runtime.py). What the engine no longer
holds is not here: a finished order update leaves the engine (its invoice stays queryable),
a completed batch is forgotten, and at most `RETIRED_ORDERS` final exchange orders are kept.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from indexmaker.core.events import MintInvoice
from indexmaker.core.ids import ClientKey, client_key
from indexmaker.core.money import round_usdc
from indexmaker.engine.engine import Engine
from indexmaker.engine.tracker import TrackedOrder
from indexmaker.model.lot import Lot
from indexmaker.model.order import OrderUpdate
from indexmaker.query import models
from indexmaker.query.params import BadRequest, page
from indexmaker.server.encoding import response_body

Values = dict[str, Any]
ZERO = Decimal(0)


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
    lots = [
        models.CollateralLot(
            seq_num=lot.seq_num,
            gross=lot.gross,
            location=lot.location,
            fee=lot.fee,
            ready=lot.ready,
            available=lot.available,
            hops=list(lot.hops),
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
    return models.InventoryLot(
        lot_id=lot.lot_id,
        venue=lot.asset.venue,
        pair=lot.asset.pair,
        trade_id=lot.trade_id,
        price=lot.price,
        quantity=lot.quantity,
        fee=lot.fee,
        free=lot.free,
        assigned=lot.assigned,
        opened_at=lot.opened_at,
        reserved_by_batch=lot.reserved_by,
        assignments=[
            models.LotAssignment(
                client_order_id=a.client_order_id, quantity=a.quantity, price=a.price, fee=a.fee
            )
            for a in lot.assignments
        ],
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
    return models.OrderUpdate(
        chain_id=update.client[0],
        address=update.client[1],
        client_order_id=update.client_order_id,
        symbol=update.symbol,
        side=update.side.value,
        status=update.status.value,
        amount=update.amount,
        management_fee=update.management_fee,
        engaged=update.engaged,
        spent=update.spent,
        remaining=update.remaining,
        filled_quantity=update.filled_quantity,
        fill_rate=update.fill_rate,
        batch_id=update.batch_id,
        payment_id=update.payment_id,
        received_at=update.received_at,
        last_fill_at=update.last_fill_at,
        reason=update.reason,
    )


def orders(engine: Engine, values: Values) -> models.Page[models.OrderUpdate]:
    """Order updates the engine holds (not yet finished), by arrival."""
    wanted = [
        u
        for u in engine.orders.all_updates()
        if _matches(u.client, values)
        and values.get("symbol", u.symbol) == u.symbol
        and values.get("status", u.status.value) == u.status.value
    ]
    chosen, cursor = page(wanted, lambda u: (u.arrival,), (int,), values)
    return models.Page(items=[order_update(u) for u in chosen], next_cursor=cursor)


def batches(engine: Engine, values: Values) -> models.Page[models.Batch]:
    """Batches in flight, by batch id."""
    rows = []
    for batch in engine.batches.open_batches():
        entries = list(batch.entries())
        rows.append(
            models.Batch(
                batch_id=batch.batch_id,
                created_at=batch.created_at,
                engaged=batch.engaged,
                notional=batch.notional,
                open_exchange_orders=batch.open_orders,
                symbols=sorted(batch.groups),
                client_order_ids=[e.update.client_order_id for e in entries],
                assets=[
                    models.BatchAsset(
                        venue=p.instrument.venue,
                        pair=p.instrument.pair,
                        demand=p.demand,
                        received=p.received,
                        exchange_orders=list(p.order_ids),
                    )
                    for _, p in sorted(batch.positions.items())
                ],
            )
        )
    chosen, cursor = page(rows, lambda b: (b.batch_id,), (int,), values)
    return models.Page(items=chosen, next_cursor=cursor)


def rebalances(engine: Engine, values: Values) -> models.Page[models.Rebalance]:
    """Rebalances in progress and done, by index and basket version."""
    manager = engine.rebalance
    rows = []
    for rebalance in [*manager.finished, *manager.active.values()]:
        quantity = {a.instrument: a.quantity for a in rebalance.target.assets}
        rows.append(
            models.Rebalance(
                symbol=rebalance.target.symbol,
                version=rebalance.version,
                proposal_id=rebalance.proposal_id,
                started_at=rebalance.started_at,
                done=rebalance.done,
                rounds=rebalance.rounds,
                exchange_orders=rebalance.orders,
                cash=rebalance.cash,
                assets=[
                    models.RebalanceAsset(
                        venue=a.instrument.venue,
                        pair=a.instrument.pair,
                        target_quantity=quantity.get(a.instrument, Decimal(0)),
                        arrival_mid=a.arrival_mid,
                        bought=a.bought,
                        sold=a.sold,
                        crossed=a.crossed,
                        fees=a.fees,
                        slippage=a.slippage,
                        traded=a.traded,
                    )
                    for _, a in sorted(rebalance.assets.items())
                ],
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
        models.ExchangeOrder(
            order_id=o.order_id,
            batch_id=o.batch_id,
            venue=o.command.instrument.venue,
            pair=o.command.instrument.pair,
            side=o.command.side.value,
            price=o.command.price,
            quantity=o.command.quantity,
            status=o.status.value,
            filled=o.filled,
            commission=o.commission,
            trades=len(o.trade_ids),
            reason=o.reason,
            created_at=o.created_at,
            sent_at=o.sent_at,
        )
        for o in chosen
    ]
    return models.Page(items=items, next_cursor=cursor)


def invoice(client: ClientKey, invoice: MintInvoice) -> models.Invoice:
    return models.Invoice(
        chain_id=client[0],
        address=client[1],
        client_order_id=invoice.client_order_id,
        payment_id=invoice.payment_id,
        symbol=invoice.symbol,
        minted_at=invoice.timestamp,
        filled_quantity=invoice.filled_quantity,
        total_amount=invoice.total_amount,
        amount_paid=invoice.amount_paid,
        amount_remaining=invoice.amount_remaining,
        management_fee=invoice.management_fee,
        assets_value=invoice.assets_value,
        exchange_fee=invoice.exchange_fee,
        fill_rate=invoice.fill_rate,
        basket_version=invoice.basket_version,
        invoice_hash=invoice.invoice_hash,
        mint_tx_hash=invoice.mint_tx_hash,
        # As the FIX frame carries it (server/encoding.py), without header and trailer.
        body={"chain_id": client[0], "address": client[1], **response_body(invoice)[2]},
        lots=[
            models.InvoiceLot(
                lot_id=lot.lot_id,
                venue=lot.asset.venue,
                pair=lot.asset.pair,
                quantity=lot.quantity,
                price=lot.price,
                fee=lot.fee,
            )
            for lot in invoice.lots
        ],
    )


def client_of(values: Values) -> ClientKey | None:
    """The (chain_id, address) filter; both or neither (an address is per chain)."""
    chain_id, address = _client_filter(values)
    if (chain_id is None) != (address is None):
        raise BadRequest("chain_id: give chain_id and address together (an address is per chain)")
    return None if chain_id is None or address is None else client_key(chain_id, address)

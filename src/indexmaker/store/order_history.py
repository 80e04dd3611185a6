"""Index orders as a queryable table (issue 10: "orders and their state", also closed and old
ones, also after a restart), written by the store from what it journals anyway.

The engine forgets an order update once it is finished; the client was told every step of it
(SPEC §5: NewIndexOrder's response, IndexOrderFill, the MintInvoice or RedemptionInvoice, a
cancel's response), and each of those is an outbox row. So one row per order is inserted with
the journal entry of its request and updated by those messages, in the same transaction: an
order is listed exactly when it is durable, as its client knows it. Keyed by (chain id,
address, client order id); a repeated request (refused by the engine as a duplicate) keeps the
first row, and its refusal is not the first order's (matched by journal seq). Amounts and
quantities are exact decimal text; times are `store/invoices.py`'s sortable UTC text. The SQL
is the subset SQLite and PostgreSQL share.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from indexmaker.core.events import (
    CancelIndexOrderResponse,
    Command,
    IndexOrderFill,
    MintInvoice,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    RequestStatus,
    SendToClient,
)
from indexmaker.core.ids import ClientKey, client_key
from indexmaker.core.money import money_context, round_rate
from indexmaker.core.redemption_events import RedemptionFill, RedemptionInvoice
from indexmaker.core.store_records import OrderQuery, StoredOrder
from indexmaker.store.listing import Listing, from_time_key, time_key

# Statuses as the client knows them (SPEC §5 messages), in lifecycle order.
RECEIVED = "received"  # journalled, not yet answered
ACCEPTED = "accepted"
REJECTED = "rejected"
# A CancelIndexOrder was taken: what was not engaged, up to its amount, is removed (SPEC §3).
# The rest, if any, goes on: its next fill makes the order `filling` again.
CANCELED = "canceled"
FILLING = "filling"  # an IndexOrderFill was sent
MINTED = "minted"  # buy: the MintInvoice was sent
REDEEMED = "redeemed"  # sell: the RedemptionInvoice was sent
STATUSES = (RECEIVED, ACCEPTED, REJECTED, CANCELED, FILLING, MINTED, REDEEMED)
# What a later rejection can still end (a finished order's row keeps its end).
_LIVE = f"('{ACCEPTED}', '{CANCELED}', '{FILLING}')"

Statement = tuple[str, tuple[object, ...]]
_KEY = "chain_id = ? AND address = ? AND client_order_id = ?"
INSERT = (
    "INSERT INTO orders (chain_id, address, client_order_id, symbol, side, amount, status, "
    "filled_quantity, collateral_spent, fill_rate, received_at, updated_at, journal_seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, '0', '0', '0', ?, ?, ?) "
    "ON CONFLICT (chain_id, address, client_order_id) DO NOTHING"
)


def _key(client: ClientKey, client_order_id: str) -> tuple[object, ...]:
    return int(client[0]), str(client[1]), str(client_order_id)


def request_key(event: object) -> tuple[ClientKey, str] | None:
    """(client, client order id) of a NewIndexOrderRequest, None for any other input: the
    order a journal entry's NewIndexOrderResponse answers at once (see `effect_rows`)."""
    if not isinstance(event, NewIndexOrderRequest):
        return None
    return event.client, str(event.client_order_id)


def request_rows(journal_seq: int, at: datetime, event: object) -> list[Statement]:
    """The insert a journal entry makes (only a NewIndexOrderRequest makes one)."""
    if not isinstance(event, NewIndexOrderRequest):
        return []
    when = time_key(at)
    params = (
        *_key(event.client, event.client_order_id),
        str(event.symbol),
        event.side.value,
        str(event.amount),
        RECEIVED,
        when,
        when,
        journal_seq,
    )
    return [(INSERT, params)]


def effect_rows(
    journal_seq: int,
    at: datetime,
    commands: Sequence[Command],
    request: tuple[ClientKey, str] | None = None,
) -> list[Statement]:
    """The updates one journal entry's client messages make to their orders' rows.

    `request` is `request_key` of the entry's input. A NewIndexOrderResponse for that order
    answers the request itself: it sets the status of the row that request inserted (a
    repeated request's refusal leaves the first order's row alone). Any other
    NewIndexOrderResponse comes later, from a tick or a chain event: a rejection then ends an
    accepted order (a buy whose collateral never became ready, a sell whose index tokens never
    reached custody, SPEC §5), with its reason."""
    when = time_key(at)
    rows: list[Statement] = []
    for command in commands:
        if not isinstance(command, SendToClient):
            continue
        message, key = command.message, command.client
        if isinstance(message, NewIndexOrderResponse):
            rejected = message.status is not RequestStatus.NEW
            if request == (key, str(message.client_order_id)):
                rows.append(
                    (
                        f"UPDATE orders SET status = ?, reason = ?, updated_at = ? "
                        f"WHERE {_KEY} AND journal_seq = ? AND status = '{RECEIVED}'",
                        (
                            REJECTED if rejected else ACCEPTED,
                            message.reason,
                            when,
                            *_key(key, message.client_order_id),
                            journal_seq,
                        ),
                    )
                )
            elif rejected:
                rows.append(
                    (
                        f"UPDATE orders SET status = ?, reason = ?, updated_at = ? "
                        f"WHERE {_KEY} AND status IN {_LIVE}",
                        (REJECTED, message.reason, when, *_key(key, message.client_order_id)),
                    )
                )
        elif isinstance(message, IndexOrderFill):
            # A fill answers what the order waited for: its acceptance's reason is stale; a
            # hold's report names what it waits for now (its reason), else none.
            rows.append(
                (
                    "UPDATE orders SET status = ?, filled_quantity = ?, collateral_spent = ?, "
                    f"fill_rate = ?, reason = ?, updated_at = ? WHERE {_KEY}",
                    (
                        FILLING,
                        str(message.filled_quantity),
                        str(message.collateral_spent),
                        str(message.fill_rate),
                        message.reason,
                        when,
                        *_key(key, message.client_order_id),
                    ),
                )
            )
        elif isinstance(message, CancelIndexOrderResponse):
            if message.status is RequestStatus.CANCELED:
                rows.append(_status(key, message.client_order_id, CANCELED, when))
        elif isinstance(message, MintInvoice):
            rows.append(
                (
                    "UPDATE orders SET status = ?, filled_quantity = ?, collateral_spent = ?, "
                    f"fill_rate = ?, payment_id = ?, reason = NULL, updated_at = ? WHERE {_KEY}",
                    (
                        MINTED,
                        str(message.filled_quantity),
                        str(message.amount_paid),
                        str(message.fill_rate),
                        str(message.payment_id),
                        when,
                        *_key(key, message.client_order_id),
                    ),
                )
            )
        elif isinstance(message, RedemptionFill):
            rows.append(_redemption_progress(key, message, when))
        elif isinstance(message, RedemptionInvoice):
            # Ended: what it redeemed, at what rate, and the net USDC paid (collateral_spent
            # is a buy's; a sell's is what it paid the client).
            rows.append(
                (
                    "UPDATE orders SET status = ?, filled_quantity = ?, collateral_spent = ?, "
                    f"fill_rate = ?, reason = NULL, updated_at = ? WHERE {_KEY}",
                    (
                        REDEEMED,
                        str(message.redeemed_quantity),
                        str(message.net_paid),
                        str(_redeemed_rate(message)),
                        when,
                        *_key(key, message.client_order_id),
                    ),
                )
            )
    return rows


def _redemption_progress(client: ClientKey, fill: RedemptionFill, when: str) -> Statement:
    """A sell's progress report: units sold, net proceeds so far, its rate and reason (a hold
    names what it waits for; none once selling goes on). Units sold make it `filling`."""
    status = f"CASE WHEN status IN {_LIVE} THEN '{FILLING}' ELSE status END"
    return (
        f"UPDATE orders SET status = {status if fill.sold_quantity > 0 else 'status'}, "
        "filled_quantity = ?, collateral_spent = ?, fill_rate = ?, reason = ?, updated_at = ? "
        f"WHERE {_KEY} AND status NOT IN ('{REDEEMED}', '{REJECTED}')",
        (
            str(fill.sold_quantity),
            str(fill.proceeds),
            str(fill.fill_rate),
            fill.reason,
            when,
            *_key(client, fill.client_order_id),
        ),
    )


def _redeemed_rate(invoice: RedemptionInvoice) -> Decimal:
    """redeemed / asked, as the fill reports round it (12 decimals, down); 0 for nothing
    asked (a sell cancelled whole)."""
    if invoice.quantity <= 0:
        return Decimal(0)
    with money_context():
        return round_rate(invoice.redeemed_quantity / invoice.quantity)


def _status(client: ClientKey, client_order_id: str, status: str, when: str) -> Statement:
    return (
        f"UPDATE orders SET status = ?, updated_at = ? WHERE {_KEY}",
        (status, when, *_key(client, client_order_id)),
    )


COLUMNS = (
    "chain_id, address, client_order_id, symbol, side, amount, status, reason, "
    "filled_quantity, collateral_spent, fill_rate, payment_id, received_at, updated_at, "
    "journal_seq"
)


def select(query: OrderQuery) -> tuple[str, list[object]]:
    """SQL and parameters for `query`, in arrival (journal) order."""
    listing = (
        Listing(COLUMNS, "orders")
        .client(query.client)
        .equal("client_order_id", query.client_order_id)
        .equal("symbol", query.symbol)
        .equal("side", query.side)
        .equal("status", query.status)
        .between("received_at", query.since, query.until)
    )
    if query.after is not None:
        listing.where("journal_seq > ?", query.after)
    return listing.build("journal_seq", query.limit)


def decode_row(row: Sequence[object]) -> StoredOrder:
    (chain_id, address, cid, symbol, side, amount, status, reason) = row[:8]
    (filled, spent, fill_rate, payment_id, received_at, updated_at, seq) = row[8:]
    return StoredOrder(
        client=client_key(int(str(chain_id)), str(address)),
        client_order_id=str(cid),
        symbol=str(symbol),
        side=str(side),
        amount=Decimal(str(amount)),
        status=str(status),
        reason=None if reason is None else str(reason),
        filled_quantity=Decimal(str(filled)),
        collateral_spent=Decimal(str(spent)),
        fill_rate=Decimal(str(fill_rate)),
        payment_id=None if payment_id is None else str(payment_id),
        received_at=from_time_key(str(received_at)),
        updated_at=from_time_key(str(updated_at)),
        journal_seq=int(str(seq)),
    )

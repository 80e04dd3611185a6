"""Ports: what every adapter of the core promises (ARCHITECTURE.md "Ports, runtime and
ownership"; the full contract, ordering and idempotency keys are in docs/adapters.md).

The core never calls these: it returns commands, and the runtime (`app/command_runner.py`) carries
each one out through a port, in isolation, under a timeout. Peers speak back by pushing engine
inputs into an `EventSink` at any time, from any task: a venue pushes book snapshots and
updates, order acceptances, fills and closes; a chain pushes deposits, hop results and mint
confirmations. Awaiting the sink is the back-pressure: when the engine's queue is full the
adapter waits instead of the queue growing.

A port method that raises, or does not return within the runtime's timeout, is a failure of
that one command only. What it becomes is fixed here so every adapter means the same thing:

- `VenuePort.place` failing or timing out: `ExchangeOrderStatusUnknown`, never "failed"; the
  core answers with `QueryExchangeOrder`, carried out by `order_status` (by our client order
  id): its fills, then an `ExchangeOrderReport` (status None when the venue does not know it).
- `ChainPort.transfer` / `BridgePort.relay` refusing definitely (`NonRetryableError`: nothing
  moved): `HopFailed` (the router retries under a new transfer id). Timing out or failing any
  other way: `HopStatusUnknown`, never "failed" (the hop may have moved the amount); the core
  answers with `QueryHop`, carried out by `hop_status` (by transfer id): a `HopReport`, and
  the hop is resent, under the same transfer id, only when the report says NOT_FOUND.
- `ChainPort.mint` / `burn` / `withdraw` failing: `MintFailed` / `BurnFailed` /
  `WithdrawalFailed` (retryable; the contract refuses a repeated payment id, so a resend
  never mints twice).

The simulators in `indexmaker.sim.adapters` implement these ports; the conformance suite in
`tests/conformance/` states, against the port, what every venue adapter must do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from indexmaker.core.errors import NonRetryableError
from indexmaker.core.events import (
    BurnIndex,
    ClientRequest,
    ClientResponse,
    Command,
    EngineInput,
    EscrowIndex,
    ExchangeFill,
    ExchangeOrderStatus,
    HopReport,
    MintIndex,
    PlaceExchangeOrder,
    QueryHop,
    ReleaseIndex,
    RouteCollateral,
    WithdrawCollateral,
)
from indexmaker.core.ids import ClientKey, ExchangeOrderId, InstrumentId, VenueOrderId
from indexmaker.core.journal import JournalEntry, OutboxItem
from indexmaker.core.store_records import (
    BatchQuery,
    InvoiceQuery,
    OrderQuery,
    SpentStore,
    StoredBatch,
    StoredInvoice,
    StoredMessage,
    StoredOrder,
    StoredRedemption,
)
from indexmaker.model.filters import InstrumentRules

EventSink = Callable[[EngineInput], Awaitable[None]]
"""Where an adapter pushes what its peer reports. Awaiting it may wait (back-pressure)."""


class OrderNotFound(NonRetryableError):
    """The venue does not know this client order id (never arrived, or long forgotten)."""


@dataclass(frozen=True, slots=True)
class OrderReport:
    """The venue's own view of one of our orders: the reconciliation report.

    `status` is LIVE or final (never PENDING); `fills` are every execution the venue knows
    of, each with its trade id, so the core deduplicates them against what the stream
    already delivered. `filled_quantity` equals the sum of the fills' quantities.
    """

    order_id: ExchangeOrderId
    instrument: InstrumentId
    status: ExchangeOrderStatus
    filled_quantity: Decimal
    fills: tuple[ExchangeFill, ...] = ()
    reason: str | None = None
    venue_order_id: VenueOrderId | None = None


@dataclass(frozen=True, slots=True)
class LimitHeadroom:
    """One rate-limit pool as the venue last reported it (Binance: used-weight headers)."""

    pool: str
    used: int
    limit: int
    retry_at: datetime | None = None  # set while the venue told us to back off (429)

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


# ---------------------------------------------------------------- venue


@runtime_checkable
class VenuePort(Protocol):
    """One account on one trading venue.

    Pushes into the sink: `BookSnapshot` then `BookUpdate`s per subscribed instrument (a
    snapshot again after any gap), `ExchangeOrderAccepted`, `ExchangeFill` (at least once
    per trade id, possibly after the order's close), `ExchangeOrderClosed` (once, final).
    """

    @property
    def venue(self) -> str: ...

    async def start(self, sink: EventSink) -> None:
        """Connect and begin pushing events into `sink`."""

    async def stop(self) -> None:
        """Stop pushing; release connections and tasks. Idempotent."""

    async def instruments(self) -> Mapping[InstrumentId, InstrumentRules]:
        """Every tradable instrument with its filters (Binance exchangeInfo)."""
        ...

    async def subscribe_books(self, instruments: Sequence[InstrumentId]) -> None:
        """Start book streams; each begins with a `BookSnapshot` pushed into the sink."""

    async def place(self, order: PlaceExchangeOrder) -> None:
        """Send a LIMIT IOC order keyed by `order.order_id` (our client order id).

        Returns once the venue has the order; its outcome comes through the sink. Raises on
        a definite refusal or a failure; either way the runtime reconciles by order id.
        """

    async def cancel(self, order_id: ExchangeOrderId, instrument: InstrumentId) -> None:
        """Ask the venue to cancel; the close comes through the sink. Raises `OrderNotFound`
        for an order the venue does not hold open."""

    async def order_status(
        self, order_id: ExchangeOrderId, instrument: InstrumentId
    ) -> OrderReport:
        """Reconcile one order by our client order id; raises `OrderNotFound`."""
        ...

    async def open_orders(self) -> Sequence[OrderReport]:
        """Every order still open at the venue (reconciliation at start)."""
        ...

    def limit_headroom(self) -> Sequence[LimitHeadroom]:
        """What is left of each rate-limit pool, as the venue last reported it."""
        ...


# ---------------------------------------------------------------- chain and bridge


@runtime_checkable
class ChainPort(Protocol):
    """Custody and index tokens on the chains the service uses.

    Pushes into the sink: `DepositObserved` (once per (designation, tx hash, log index), once
    final), `HopCompleted`/`HopFailed` for transfers, `MintConfirmed`.
    """

    async def start(self, sink: EventSink) -> None: ...

    async def stop(self) -> None: ...

    async def transfer(self, command: RouteCollateral) -> None:
        """Move collateral one hop (no bridge); keyed by `transfer_id`, at most once."""

    async def mint(self, command: MintIndex) -> None:
        """Mint index tokens; keyed by `payment_id`: a repeat is refused by the contract."""

    async def burn(self, command: BurnIndex) -> None:
        """Burn a client's index tokens (redemption); keyed by `payment_id`; `BurnConfirmed`
        comes through the sink."""

    async def withdraw(self, command: WithdrawCollateral) -> None:
        """Return collateral to a client's address; keyed by `withdrawal_id`;
        `WithdrawalCompleted` comes through the sink."""

    async def escrow(self, command: EscrowIndex) -> None:
        """Move a redeeming client's index tokens into custody; keyed by `escrow_id` (a
        repeat moves nothing). Pushes `IndexEscrowed`, or `IndexEscrowFailed` on a definite
        refusal (the client did not approve or hold them); raises when the outcome is open."""

    async def release_index(self, command: ReleaseIndex) -> None:
        """Hand an escrow's unsold units back to the client, once per `escrow_id`; raises
        when it could not (the runtime tries again: a repeat moves nothing)."""

    async def balance(self, designation: str) -> Decimal:
        """Collateral held at one designation (`KIND:NAME:SYMBOL`)."""
        ...

    async def hop_status(self, query: QueryHop) -> HopReport:
        """What became of one `transfer` by its transfer id (the key it was sent under):
        DONE with the amount received, PENDING when it was taken and its `HopCompleted`
        will come, NOT_FOUND only when it provably did not happen (nothing moved under this
        key; a resend under the same key can never move it twice). Raises when it cannot
        tell (the runtime asks again later)."""
        ...


@runtime_checkable
class BridgePort(Protocol):
    """A cross-chain bridge (Across-style): deposit on one side, a relayer fills the other
    after a delay, minus a fee. Pushes `HopCompleted` (amount received, fee) or `HopFailed`."""

    @property
    def name(self) -> str: ...

    async def start(self, sink: EventSink) -> None: ...

    async def stop(self) -> None: ...

    async def relay(self, command: RouteCollateral) -> None:
        """Start one crossing; keyed by `transfer_id`, at most once."""

    async def hop_status(self, query: QueryHop) -> HopReport:
        """What became of one crossing by its transfer id; as `ChainPort.hop_status`."""
        ...


# ---------------------------------------------------------------- store and clients


class StorePort(Protocol):
    """Durable state (issue 10; docs/decisions.md, "Durable state"): the journal of engine
    inputs, snapshots of the engine, the outbox of effects and a few named values.
    Implemented by `indexmaker.store` (SQLite, PostgreSQL).

    Synchronous on purpose: the engine journals each input before applying it, in its own
    step. `append`, `add_effects`, `mark_done`, `set_meta` and `save_snapshot` only buffer;
    `commit` makes everything buffered durable in one transaction (a group commit), in
    order, so what survives a crash is always a prefix of the journal. An effect leaves the
    process only after the commit that holds it (durable before effect). Reads see only what
    is committed. Raises the backend's database error when the database fails.
    """

    @property
    def last_seq(self) -> int:
        """The seq of the last entry appended (committed or buffered); 0 when empty."""
        ...

    def append(self, at: datetime, event: EngineInput) -> JournalEntry:
        """Journal one input; entries are numbered 1, 2, ... in order, never reused."""
        ...

    def entries(self, after: int = 0) -> Iterator[JournalEntry]:
        """Committed journal entries with seq > `after`, in order."""
        ...

    def save_snapshot(self, seq: int, fingerprint: str, state: bytes) -> None:
        """The engine's state after journal entry `seq`, taken by the build `fingerprint`
        (a snapshot of another build is never restored: full replay instead)."""

    def latest_snapshot(self, fingerprint: str) -> tuple[int, bytes] | None:
        """(seq, state) of the newest committed snapshot of this build, or None."""
        ...

    def add_effects(self, journal_seq: int, commands: Sequence[Command]) -> list[OutboxItem]:
        """Outbox: the effects input `journal_seq` caused, keyed "<journal_seq>.<index>"
        (the idempotency key each effect carries)."""
        ...

    def add_batch_events(self, journal_seq: int, events: Sequence[Command]) -> None:
        """The batch notices (`BatchEvent`) input `journal_seq` caused, kept for the query
        API's batch history (anything else in `events` is ignored)."""

    def mark_done(self, keys: Iterable[str]) -> None:
        """Outbox: these effects were carried out (or superseded by recovery)."""

    def pending(self) -> list[OutboxItem]:
        """Committed effects not marked done, in journal order."""
        ...

    def effects(self) -> Iterator[OutboxItem]:
        """Every committed effect, in the order they were added."""
        ...

    def get_meta(self, name: str) -> str | None:
        """A named value that survives restarts (e.g. a sequence number), or None."""
        ...

    def set_meta(self, name: str, value: str) -> None: ...

    @property
    def dirty(self) -> bool:
        """Something is buffered and not yet durable."""
        ...

    def commit(self) -> None:
        """Write everything buffered in one transaction; durable when this returns."""

    def commit_later(self) -> Future[None]:
        """`commit` without waiting: the transaction runs in the store's writer thread (in
        the order asked); the future is done once it is durable, or holds the error."""
        ...

    def close(self) -> None:
        """Commit what is buffered and release the database."""

    # Readers beside the engine (the query API, the FIX server), on connections of their own.

    def invoices(self, query: InvoiceQuery) -> list[StoredInvoice]:
        """Committed mint invoices matching `query`, by mint time then payment id, at most
        `query.limit`. Safe from any thread (a connection per call); ValueError for a naive
        time in the query."""
        ...

    def redemptions(self, query: InvoiceQuery) -> list[StoredRedemption]:
        """Committed redemption invoices matching `query` (its times on the invoice time),
        by that time then client and order id, at most `query.limit`. Any thread."""
        ...

    def client_messages(self, since: datetime, limit: int) -> tuple[int, list[StoredMessage]]:
        """(how many client messages were ever committed, the last `limit` of those caused
        by inputs handled at or after `since`), oldest first. For the owner, at start."""
        ...

    def bound_client_messages(self, retention: timedelta, keep: int) -> None:
        """From now on, keep client messages to what `client_messages` would restore: the
        delivered ones older than `retention` (by the newest input's time) or before the
        newest `keep` are deleted in later commits, their ranks kept. For the owner, at
        start (store/fix_outbox.py)."""
        ...

    def orders(self, query: OrderQuery) -> list[StoredOrder]:
        """Committed index orders matching `query`, in arrival order, at most
        `query.limit`; closed ones too (the engine forgets them). Any thread."""
        ...

    def batches(self, query: BatchQuery) -> list[StoredBatch]:
        """Committed batches matching `query`, in creation order, at most `query.limit`;
        completed ones too. Any thread."""
        ...

    def spent_signatures(self) -> SpentStore:
        """The spent-signature record in this database, on a connection of its own for the
        FIX server (one owner: the event loop). The caller closes it."""
        ...


class ClientGatewayPort(Protocol):
    """Where client requests come from and responses go to (the FIX server today; a message
    broker between gateway processes later). Requests are handed to a `RequestSink` given
    at construction; responses are keyed by client and never block the engine."""

    def deliver(self, client: ClientKey, message: ClientResponse) -> None:
        """Fan `message` out to every session of `client`; must not raise for a dead peer."""


RequestSink = Callable[[ClientRequest], None]

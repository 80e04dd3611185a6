"""Collateral manager: the per-client ledger of collateral lots (the router that moves them
between designations is engine/collateral_router.py).

A client's collateral moves unconfirmed (deposited, in transit) → ready (at the exchange)
→ pre-authorised (reserved by one order update) → spent. Amounts are gross (what the
client deposited); routing fees are recorded per lot and charged to the update that
reserves the lot, as its management fee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from indexmaker.core.errors import InsufficientFundsError, InvalidInputError, InvariantViolation
from indexmaker.core.events import CollateralPosition
from indexmaker.core.ids import ClientKey, ClientOrderId, Designation
from indexmaker.core.money import (
    ROUNDING_NOISE,
    USDC_LIMIT,
    exact_add,
    exact_sub,
    round_cost_down,
    round_usdc,
    share_down,
)
from indexmaker.model.collateral import Reservation

ZERO = Decimal(0)


@dataclass(slots=True)
class CollateralLot:
    client: ClientKey
    seq_num: int  # the custody contract's deposit number; -1 for returned change
    gross: Decimal
    location: Designation
    fee: Decimal = ZERO  # routing fees so far
    ready: bool = False
    available: Decimal = ZERO  # gross not yet reserved (reservable once ready)
    fee_charged: Decimal = ZERO
    hops: list[str] = field(default_factory=list)
    origin: str = ""  # the designation it was deposited on (names its hops)
    held: str = ""  # a given-up hop's note: where the lot waits for its route to resume
    below_cost: bool = False  # held on its chain below its route's cost (route_holds.py)
    merged: str = ""  # a merged lot's name: its lots' names joined by "+"
    block: int = 0  # its deposit's block on the origin's chain: where hop look-ups start

    @property
    def net(self) -> Decimal:
        return self.gross - self.fee

    @property
    def name(self) -> str:
        """The lot's stable name in hop keys: "<origin>#<seq_num>", or its merged lots'."""
        return self.merged or f"{self.origin}#{self.seq_num}"


@dataclass(slots=True)
class ClientLedger:
    lots: list[CollateralLot] = field(default_factory=list)
    reservations: dict[ClientOrderId, Reservation] = field(default_factory=dict)
    deposited: Decimal = ZERO
    fees: Decimal = ZERO  # routing fees of every lot
    spent: Decimal = ZERO

    def ready_available(self) -> Decimal:
        return sum((lot.available for lot in self.lots if lot.ready), ZERO)

    def in_transit(self) -> Decimal:
        """Gross of the lots on their way (held ones are not: `held`)."""
        return exact_add(*(lot.gross for lot in self.lots if not lot.ready and not lot.below_cost))

    def held(self) -> Decimal:
        """Gross of the lots held on their chain below their route's cost (not in transit)."""
        return exact_add(*(lot.gross for lot in self.lots if lot.below_cost))


class CollateralManager:
    def __init__(self) -> None:
        self._ledgers: dict[ClientKey, ClientLedger] = {}
        self._seen_deposits: set[tuple[Designation, int]] = set()
        # Per source chain id: (Σ gross, Σ routing fees) of deposits that completed their route.
        self._routed: dict[int, tuple[Decimal, Decimal]] = {}

    def ledger(self, client: ClientKey) -> ClientLedger:
        return self._ledgers.setdefault(client, ClientLedger())

    def clients(self) -> list[ClientKey]:
        return list(self._ledgers)

    def on_deposit(
        self,
        client: ClientKey,
        seq_num: int,
        amount: Decimal,
        designation: Designation,
        block: int = 0,
    ) -> CollateralLot | None:
        """A new lot, or None for a repeated sequence number (the chain re-delivered it)."""
        key = (designation, seq_num)
        if key in self._seen_deposits:
            return None
        if not amount.is_finite() or amount <= 0:
            raise InvariantViolation(f"deposit {seq_num} of non-positive amount {amount}")
        if amount >= USDC_LIMIT:  # e.g. 10^70 of a local token: nothing credited or routed
            raise InvalidInputError(
                "amount",
                f"deposit #{seq_num} of {amount:f} USDC on {designation} is not below the "
                f"largest amount the route carries, {USDC_LIMIT:f} USDC",
            )
        self._seen_deposits.add(key)
        lot = CollateralLot(
            client=client,
            seq_num=seq_num,
            gross=amount,
            location=designation,
            available=amount,
            origin=designation,
            block=block,
        )
        ledger = self.ledger(client)
        ledger.lots.append(lot)
        ledger.deposited += amount
        return lot

    def last_deposit_seq(self) -> int:
        """The highest deposit sequence number seen on any designation (0: none yet)."""
        return max((seq for _, seq in self._seen_deposits), default=0)

    def on_hop(self, lot: CollateralLot, destination: Designation, fee: Decimal, hop: str) -> None:
        if fee < 0 or lot.fee + fee > lot.gross:
            raise InvariantViolation(f"hop fee {fee} impossible on lot {lot.seq_num}")
        lot.fee += fee
        lot.location = destination
        lot.hops.append(hop)
        self.ledger(lot.client).fees += fee

    def mark_ready(self, lot: CollateralLot) -> None:
        lot.ready = True
        if lot.seq_num >= 0:  # a deposit, not returned change
            gross, fees = self._routed.get(lot.client[0], (ZERO, ZERO))
            self._routed[lot.client[0]] = (gross + lot.gross, fees + lot.fee)

    def expected_fee(self, client: ClientKey, amount: Decimal) -> Decimal:
        """Routing fees an order of `amount` (USDC, gross) would be charged (SPEC §4 quotes):
        the pro-rata fees of the client's ready collateral it would reserve, FIFO as `reserve`
        takes it, and for the rest the fee rate seen so far on deposits from the client's chain
        (0 before any completed its route)."""
        left = amount
        fee = ZERO
        ledger = self._ledgers.get(client)
        for lot in ledger.lots if ledger is not None else ():
            if left <= 0:
                break
            if lot.ready and lot.available > 0:
                take = lot.available if lot.available < left else left
                fee += lot.fee * take / lot.gross
                left -= take
        if left > 0:
            gross, fees = self._routed.get(client[0], (ZERO, ZERO))
            if gross > 0:
                fee += left * fees / gross
        return fee

    def reserve(self, client: ClientKey, order_id: ClientOrderId, gross: Decimal) -> Reservation:
        """Pre-authorise `gross` of ready collateral FIFO; all or nothing."""
        ledger = self.ledger(client)
        if order_id in ledger.reservations:
            raise InvariantViolation(f"{order_id} already holds a reservation")
        if gross <= 0:
            raise InvariantViolation(f"reservation of {gross}")
        if ledger.ready_available() < gross:
            raise InsufficientFundsError(f"need {gross}, ready {ledger.ready_available()}")
        left = gross
        fee = ZERO
        for lot in ledger.lots:
            if left <= 0:
                break
            if not lot.ready or lot.available <= 0:
                continue
            take = min(left, lot.available)
            lot.available -= take
            # The lot's fee is shared pro rata; the last taker gets the remainder exactly. A share
            # rounds down and never exceeds the fee left, so fees charged never pass the fee;
            # on the USDC grid of allocation totals (round_cost_down), so a reservation's net,
            # its change and the client's unspent sum exactly in 34 digits (a 34-digit quotient
            # such as 0.1/3 left the ledger unbalanced by a unit of the last digit).
            fee_left = exact_sub(lot.fee, lot.fee_charged)
            if lot.available == 0:
                share = fee_left
            else:
                share = min(round_cost_down(share_down(lot.fee, take, lot.gross)), fee_left)
            lot.fee_charged = exact_add(lot.fee_charged, share)
            fee += share
            left -= take
        reservation = Reservation(gross=gross, fee=fee)
        ledger.reservations[order_id] = reservation
        ledger.lots = [lot for lot in ledger.lots if not lot.ready or lot.available > 0]
        return reservation

    def spend(self, client: ClientKey, order_id: ClientOrderId, amount: Decimal) -> Decimal:
        """Charge `amount` to the reservation; returns its total spent (the one figure the
        order's ledger copies, so the two never drift apart)."""
        ledger = self.ledger(client)
        reservation = ledger.reservations.get(order_id)
        if reservation is None or amount < 0:
            raise InvariantViolation(f"{order_id}: cannot spend {amount}")
        total = reservation.spent + amount
        if total > reservation.net:
            if total - reservation.net > ROUNDING_NOISE:
                raise InvariantViolation(f"{order_id}: cannot spend {amount}")
            total = reservation.net  # the last digit of a sum, not money
        ledger.spent += total - reservation.spent
        reservation.spent = total
        return total

    def release(self, client: ClientKey, order_id: ClientOrderId) -> Decimal:
        """End a reservation; the unspent part returns to the client as ready change."""
        ledger = self.ledger(client)
        reservation = ledger.reservations.pop(order_id, None)
        if reservation is None:
            return ZERO
        change = reservation.net - reservation.spent
        if change > 0:
            ledger.lots.append(self._change_lot(client, change))
        return change

    def reduce(self, client: ClientKey, order_id: ClientOrderId, amount: Decimal) -> None:
        """Shrink a reservation by unspent collateral (a cancel); it returns as ready change.

        The routing fee already charged stays with the order: it was paid on the way.
        """
        ledger = self.ledger(client)
        reservation = ledger.reservations.get(order_id)
        if reservation is None or amount <= 0 or amount > reservation.net - reservation.spent:
            raise InvariantViolation(f"{order_id}: cannot reduce by {amount}")
        reservation.gross -= amount
        if reservation.net < reservation.spent:
            # Taking all that was unspent can round a unit of the last digit too far.
            reservation.gross = reservation.spent + reservation.fee
        ledger.lots.append(self._change_lot(client, amount))

    def position(self, client: ClientKey) -> CollateralPosition:
        """The client's balances, each rounded to the micro-USDC (reported, not booked)."""
        ledger = self.ledger(client)
        preauth = sum((r.net - r.spent for r in ledger.reservations.values()), ZERO)
        return CollateralPosition(
            client=client,
            unconfirmed=round_usdc(ledger.in_transit()),
            ready=round_usdc(ledger.ready_available()),
            preauth=round_usdc(preauth),
            spent=round_usdc(ledger.spent),
            held=round_usdc(ledger.held()),
        )

    def unspent_of(self, client: ClientKey, order_id: ClientOrderId) -> Decimal:
        """What one reservation still holds unspent (0 without a reservation)."""
        reservation = self.ledger(client).reservations.get(order_id)
        return reservation.net - reservation.spent if reservation is not None else ZERO

    def unspent(self, client: ClientKey) -> Decimal:
        """Collateral still the client's: unreserved lots (net of their fees) and reservations.
        A client never seen holds 0 and gets no ledger (the anti-bot gate asks for anyone)."""
        ledger = self._ledgers.get(client)
        if ledger is None:
            return ZERO
        in_lots = sum((lot.available - lot.fee + lot.fee_charged for lot in ledger.lots), ZERO)
        reserved = sum((r.net - r.spent for r in ledger.reservations.values()), ZERO)
        return in_lots + reserved

    @staticmethod
    def _change_lot(client: ClientKey, amount: Decimal) -> CollateralLot:
        # Change is a fee-free ready lot: its routing fee was charged to the order that used it.
        lot = CollateralLot(
            client=client, seq_num=-1, gross=amount, location=Designation("change"), ready=True
        )
        lot.available = amount
        lot.hops.append("change")
        return lot

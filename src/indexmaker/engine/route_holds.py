"""Lots below the cost of their route: held on their chain as the client's (issue 11).

A hop that pays a bridge fee and gas in USDC cannot carry less than it costs: sent anyway, a
0.5 USDC deposit on 42161 arrived as "received 0" and the next hop's release of nothing
reverted for good. So before a lot takes its next hop, the cost of the route from where it is
to the exchange (the sum of the latest quoted cost of every hop left: `RouteCostQuoted`, from
the chain adapter, journalled like every input) is compared with what the client has there:
the lot's net amount plus the client's lots already held at that designation. At or below the
cost, the lot is held there (never in transit); above it, the held lots and the lot are merged
into one lot and routed as one hop. A new quote re-checks every held group, so a cost that
falls routes what it now covers. Everything here is keyed and ordered by insertion, so a
replay of the same inputs holds and merges exactly the same lots (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from indexmaker.core.errors import InvalidInputError, InvariantViolation
from indexmaker.core.ids import ClientKey, Designation
from indexmaker.core.money import USDC_LIMIT, exact_add, usdc_text
from indexmaker.engine.collateral import ClientLedger, CollateralLot
from indexmaker.engine.collateral_router import CollateralRouter, Hop, RouteError

ZERO = Decimal(0)


class RouteHolds:
    """The latest quoted cost per hop source, and the lots held below their route's cost."""

    def __init__(self) -> None:
        self._quotes: dict[Designation, Decimal] = {}
        # (client, designation) → its held lots there, oldest first (insertion order: replay).
        self._held: dict[tuple[ClientKey, Designation], list[CollateralLot]] = {}

    def quote(self, hop: Hop | None, source: Designation, bridge: str, cost: Decimal) -> None:
        """Record the cost (USDC, ≥ 0) of the hop from `source`; `hop` is the router's hop
        from there. InvalidInputError (nothing recorded) for a source without a hop, another
        bridge than the route's, or a cost that is not a finite amount below USDC_LIMIT."""
        if hop is None:
            raise InvalidInputError("source", f"no hop from {source}")
        if bridge != hop.bridge:
            raise InvalidInputError(
                "bridge", f"the hop from {source} is {hop.bridge}, not {bridge}"
            )
        if not cost.is_finite() or cost < 0 or cost >= USDC_LIMIT:
            raise InvalidInputError("cost", f"{cost} is not an amount of USDC")
        self._quotes[source] = cost

    def quoted(self, source: Designation) -> Decimal:
        """The latest quoted cost of the hop from `source` (0 before any quote)."""
        return self._quotes.get(source, ZERO)

    def route_cost(self, path: Iterable[Hop]) -> Decimal:
        """The cost of the hops of `path` (USDC): the sum of their latest quotes."""
        return exact_add(ZERO, *(self.quoted(hop.source) for hop in path))

    def held_at(self, client: ClientKey, location: Designation) -> list[CollateralLot]:
        return list(self._held.get((client, location), ()))

    def hold(self, lot: CollateralLot, cost: Decimal) -> None:
        """Hold `lot` where it is: its status names the cost it is below."""
        lot.below_cost = True
        self._note(lot, cost)
        self._held.setdefault((lot.client, lot.location), []).append(lot)

    def still_held(self, lots: list[CollateralLot], cost: Decimal) -> None:
        """`lots` stay held under a new cost: their status names it."""
        for lot in lots:
            self._note(lot, cost)

    @staticmethod
    def _note(lot: CollateralLot, cost: Decimal) -> None:
        lot.held = f"held: below the route's cost {usdc_text(cost)} USDC on {lot.location}"

    def take(self, client: ClientKey, location: Designation) -> list[CollateralLot]:
        """The client's lots held at `location` (no longer held)."""
        lots = self._held.pop((client, location), [])
        for lot in lots:
            lot.below_cost, lot.held = False, ""
        return lots

    def groups(self) -> list[tuple[ClientKey, Designation]]:
        """Every (client, designation) with held lots, in the order they were first held."""
        return list(self._held)

    def held(self) -> list[CollateralLot]:
        """Every held lot (for tests and fingerprints), group by group."""
        return [lot for lots in self._held.values() for lot in lots]


def path_from(router: CollateralRouter, location: Designation) -> list[Hop]:
    """The router's hops from `location` to its destination ([] there; RouteError: none)."""
    path: list[Hop] = []
    while location != router.destination:
        hop = router.hop_from(location)
        if hop is None or len(path) > len(router.hops()):
            raise RouteError(f"no route from {location} to {router.destination}")
        path.append(hop)
        location = hop.destination
    return path


MAX_NAMED_LOTS = 4  # a merged lot's name lists at most this many lots


def merged_name(lots: list[CollateralLot]) -> str:
    """The merged lot's name: its lots' names joined with "+", or, for more than
    MAX_NAMED_LOTS, the first's and the last's around their count (a hop key of bounded
    length however many dust deposits are merged; still unique: a lot is merged once)."""
    if len(lots) <= MAX_NAMED_LOTS:
        return "+".join(lot.name for lot in lots)
    return f"{lots[0].name}+{len(lots) - 2} more+{lots[-1].name}"


def merge_lots(ledger: ClientLedger, lots: list[CollateralLot]) -> CollateralLot:
    """One lot in place of `lots` (one client's, at one designation, none ready or reserved,
    oldest first) in `ledger`, where the first was: their gross, fees and availability summed
    exactly, named by their names joined with "+" (so its hop keys are ones no lot had, the
    same in every replay; `merged_name`). InvariantViolation for lots that cannot be merged."""
    first = lots[0]
    if len(lots) < 2 or any(
        lot.client != first.client
        or lot.location != first.location
        or lot.ready
        or lot.available != lot.gross
        for lot in lots
    ):
        raise InvariantViolation(f"cannot merge lots {[lot.name for lot in lots]}")
    merged = CollateralLot(
        client=first.client,
        seq_num=min(lot.seq_num for lot in lots),
        gross=exact_add(*(lot.gross for lot in lots)),
        location=first.location,
        fee=exact_add(*(lot.fee for lot in lots)),
        available=exact_add(*(lot.available for lot in lots)),
        hops=[*first.hops, f"merged:{len(lots)}"],
        origin=first.origin,
        merged=merged_name(lots),
        # The earliest deposit block (0, unknown, for a lot from elsewhere): issue 11.
        block=min(lot.block if lot.origin == first.origin else 0 for lot in lots),
    )
    gone = {id(lot) for lot in lots}
    at = next(i for i, lot in enumerate(ledger.lots) if id(lot) in gone)
    ledger.lots = [lot for lot in ledger.lots if id(lot) not in gone]
    ledger.lots.insert(at, merged)
    return merged

"""Index holdings: per index, the units outstanding and the asset quantities backing them.

The inventory's backing (engine/inventory.py) is per asset, pooled over every index holding
it; a rebalance needs it per index. Units and backing move together at three places only: a
buy allocation (units filled and the lots assigned to them), a redemption's allocation (units
sold and the basket quantities they took), and a rebalance trade (backing only). An index's
*holdings basket* is what one unit is backed by now: held / units per asset. After a rebalance
has started, redemptions of that index sell the holdings basket, not the target basket
(docs/decisions.md, the cut-over rule): paid pro rata from what is held, never more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal

from indexmaker.core.ids import InstrumentId, Symbol
from indexmaker.core.money import (
    exact_add,
    exact_sub,
    round_cost_down,
    share_down,
)
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.lot import LotAssignment

ZERO = Decimal(0)
ONE = Decimal(1)


class IndexHoldings:
    def __init__(self) -> None:
        self.units: dict[Symbol, Decimal] = {}
        self.held: dict[Symbol, dict[InstrumentId, Decimal]] = {}
        # Sale proceeds of rebalances not yet spent on buys, per index (USDC).
        self.cash: dict[Symbol, Decimal] = {}
        self._changed: set[Symbol] = set()  # holdings baskets to build again
        # Per index, since its cash or units last changed otherwise than by a sale: (cash,
        # units, units sold since). Sales take cumulative shares of that cash, so the cash
        # they take does not depend on how they were grouped into steps (issue 10).
        self._since: dict[Symbol, tuple[Decimal, Decimal, Decimal]] = {}

    def bought(
        self, symbol: Symbol, units: Decimal, assignments: tuple[LotAssignment, ...]
    ) -> None:
        """A buy allocation: `units` filled, backed by the assigned lot quantities."""
        self.units[symbol] = exact_add(self.units.get(symbol, ZERO), units)
        self._since.pop(symbol, None)  # more units share the cash from here on
        held = self.held.setdefault(symbol, {})
        for assignment in assignments:
            held[assignment.asset] = exact_add(
                held.get(assignment.asset, ZERO), assignment.quantity
            )
        self._changed.add(symbol)

    def redeemed(
        self,
        symbol: Symbol,
        units: Sequence[Decimal],
        taken: Iterable[tuple[InstrumentId, Decimal]],
    ) -> list[Decimal]:
        """A sell batch's allocation to several redemptions of `symbol` at once: `units[i]`
        index units sold by the i-th, `taken` per asset what they all gave up (Σ of what
        each leg took, exact: sell_batches sums it in _split). Returns each one's share of the
        index's cash, in order (USDC, rounded down): what a rebalance sold and has not yet
        bought back belongs to the redeemed units pro rata too; as a cumulative share
        (round_cost_down of cash × units sold / units, since the cash or the units last
        changed otherwise), so sales grouped in other steps take the same cash (issue 10).
        One subtraction per leg, not one per redemption and asset (the per-redemption form
        is the oracle of tests/unit/engine/test_sell_allocation.py)."""
        if not units:
            return []
        before = self.units.get(symbol, ZERO)
        cash = self.cash.get(symbol, ZERO)
        base_cash, base_units, sold = self._since.get(symbol, (cash, before, ZERO))
        shares: list[Decimal] = []
        for part in units:
            share = ZERO
            after = exact_add(sold, part)
            if base_cash > 0 and base_units > 0:
                share = exact_sub(
                    round_cost_down(share_down(base_cash, after, base_units)),
                    round_cost_down(share_down(base_cash, sold, base_units)),
                )
            sold = after
            if share > 0:
                cash = exact_sub(cash, share)
            before = exact_sub(before, part)
            shares.append(share)
        self._since[symbol] = (base_cash, base_units, sold)
        if cash != self.cash.get(symbol, ZERO):
            self.cash[symbol] = cash
        self.units[symbol] = before
        held = self.held.setdefault(symbol, {})
        for asset, quantity in taken:
            held[asset] = exact_sub(held.get(asset, ZERO), quantity)
        self._changed.add(symbol)
        return shares

    def move(self, symbol: Symbol, asset: InstrumentId, quantity: Decimal, cash: Decimal) -> None:
        """A rebalance trade: backing changes by `quantity` (signed), the index's cash by
        `cash` (signed, USDC)."""
        held = self.held.setdefault(symbol, {})
        held[asset] = exact_add(held.get(asset, ZERO), quantity)
        self.cash[symbol] = exact_add(self.cash.get(symbol, ZERO), cash)
        self._since.pop(symbol, None)  # other cash from here on
        self._changed.add(symbol)

    def units_of(self, symbol: Symbol) -> Decimal:
        return self.units.get(symbol, ZERO)

    def held_of(self, symbol: Symbol, asset: InstrumentId) -> Decimal:
        return self.held.get(symbol, {}).get(asset, ZERO)

    def assets_of(self, symbol: Symbol) -> list[InstrumentId]:
        return [a for a, q in self.held.get(symbol, {}).items() if q > 0]

    def cash_of(self, symbol: Symbol) -> Decimal:
        return self.cash.get(symbol, ZERO)

    def touch(self, symbol: Symbol) -> None:
        """Something the holdings basket depends on changed (e.g. sales in flight)."""
        self._changed.add(symbol)

    def take_changed(self, symbol: Symbol) -> bool:
        """Whether `symbol`'s holdings changed since the last call for it."""
        if symbol in self._changed:
            self._changed.discard(symbol)
            return True
        return False


def _nothing_reserved(symbol: Symbol) -> Mapping[InstrumentId, Decimal]:
    return {}


class SellBaskets(Mapping[Symbol, Basket]):
    """The baskets redemptions sell: the target basket, except for an index that has been
    rebalanced, which sells its holdings basket (held − `reserved` by rebalance sales in
    flight) / units, each quantity rounded down so a redemption never takes more than its
    share. Read-only view over the engine's basket table."""

    def __init__(self, baskets: Mapping[Symbol, Basket], holdings: IndexHoldings) -> None:
        self._baskets = baskets
        self._holdings = holdings
        # What rebalance sales in flight hold of an index (RebalanceManager.reserved).
        self.reserved: Callable[[Symbol], Mapping[InstrumentId, Decimal]] = _nothing_reserved
        self.rebalanced: set[Symbol] = set()
        self._cache: dict[Symbol, Basket] = {}

    def __getitem__(self, symbol: Symbol) -> Basket:
        target = self._baskets[symbol]
        if symbol not in self.rebalanced:
            return target
        changed = self._holdings.take_changed(symbol)
        cached = self._cache.get(symbol)
        if cached is not None and not changed and cached.version == target.version:
            return cached
        units = self._holdings.units_of(symbol)
        reserved = self.reserved(symbol)
        assets = []
        if units > 0:
            for asset in self._holdings.assets_of(symbol):
                free = exact_sub(self._holdings.held_of(symbol, asset), reserved.get(asset, ZERO))
                if free > 0:
                    quantity = share_down(free, ONE, units)
                    if quantity > 0:
                        assets.append(BasketAsset(asset, quantity))
        basket = Basket(symbol, tuple(assets), target.version) if assets else target
        self._cache[symbol] = basket
        return basket

    def __iter__(self) -> Iterator[Symbol]:
        return iter(self._baskets)

    def __len__(self) -> int:
        return len(self._baskets)

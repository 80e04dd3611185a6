"""The sell allocation (engine/sell_batches.py) against the one it replaced
(sell_allocation_reference.py): on randomised batches (two indexes sharing an asset, several
lots per asset, some partly redeemed already, sales crossed and sold ahead, fills arriving one
by one) every redemption's proceeds, fees and lot disposals, every sale, lot and inventory
figure are identical, digit for digit, after every step. And a backing too short for the
allocation raises before anything changed."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Context, Decimal, localcontext
from typing import Any

import pytest

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.ids import (
    BatchId,
    InstrumentId,
    Symbol,
    TradeId,
    instrument,
)
from indexmaker.core.money import MONEY_CONTEXT
from indexmaker.engine.holdings import IndexHoldings
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.sell_batches import (
    Sale,
    SellAllocator,
    SellBatch,
    SellEntry,
    SellGroup,
    SellLeg,
)
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.redemption import Redemption

from .sell_allocation_reference import ReferenceAllocator
from .sell_setup import assigned_lot
from .sell_setup import redemption as sell_redemption

D = Decimal
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ASSETS = [instrument(p) for p in ("AAAUSDC", "BBBUSDC", "CCCUSDC", "DDDUSDC")]
# Two indexes sharing BBB: a fill of BBB advances both groups.
BASKETS = {
    Symbol("ONE"): (ASSETS[0], ASSETS[1], ASSETS[2]),
    Symbol("TWO"): (ASSETS[1], ASSETS[3]),
}


def _amount(rng: random.Random, digits: int, places: int) -> Decimal:
    return D(rng.randint(1, 10**digits)).scaleb(-places)


def _share(rng: random.Random) -> Decimal:
    """A share of a quantity between 5 and 40 per cent, a few digits."""
    return D(rng.randint(500, 4000)).scaleb(-4)


class World:
    """One randomised batch; built twice from one seed, it is the same world twice."""

    def __init__(self, seed: int, allocator: type[SellAllocator]) -> None:
        rng = random.Random(seed)
        self.inventory = InventoryManager()
        # Units outstanding per index and a rebalance's cash: each allocation takes its share.
        self.holdings = IndexHoldings()
        for symbol in BASKETS:
            self.holdings.units[symbol] = _amount(rng, 9, 3) + D(10**8)
            self.holdings.cash[symbol] = _amount(rng, 8, 6) if rng.random() < 0.5 else D(0)
        self.allocator = allocator(self.inventory, self.holdings)
        baskets = {
            symbol: Basket(
                symbol, tuple(BasketAsset(a, _amount(rng, 6, rng.randint(2, 7))) for a in assets)
            )
            for symbol, assets in BASKETS.items()
        }
        groups: dict[Symbol, SellGroup] = {}
        demand: dict[InstrumentId, Decimal] = {a: D(0) for a in ASSETS}
        self.redemptions: list[Redemption] = []
        for n in range(rng.randint(1, 40)):
            symbol = rng.choice(sorted(baskets))
            quantity = _amount(rng, 8, rng.randint(3, 18))
            redemption = sell_redemption(n, symbol, quantity, NOW, f"0x{n:040x}")
            self.redemptions.append(redemption)
            group = groups.setdefault(symbol, SellGroup(baskets[symbol]))
            group.entries.append(SellEntry(redemption, quantity, D(100)))
            for asset in baskets[symbol].assets:
                demand[asset.instrument] += quantity * asset.quantity
        for asset in ASSETS:
            self._lots(rng, asset, demand[asset])
        legs = {a: SellLeg(a, demand[a] * D(rng.choice(["1", "1", "0.9", "1.1"]))) for a in ASSETS}
        self.batch = SellBatch(BatchId(7), NOW, groups, legs, D(0))
        self.ahead: list[Sale] = []
        self.fills: list[Sale] = []
        trade = 0
        for asset in ASSETS:
            left = demand[asset] * D(rng.choice(["1.05", "1", "0.97", "0.5"]))
            while left > 0:
                trade += 1
                quantity = min(left, demand[asset] * _share(rng) + D("0.001"))
                left -= quantity
                crossed = rng.random() < 0.2
                fee = D(0) if crossed else _amount(rng, 5, 6)
                sale = Sale(asset, TradeId(f"t{trade}"), _amount(rng, 7, 3), quantity, fee, crossed)
                (self.ahead if rng.random() < 0.15 else self.fills).append(sale)
        rng.shuffle(self.fills)
        self.allocator._ahead = {}
        for sale in self.ahead:
            self.allocator._ahead.setdefault(sale.asset, []).append(sale)

    def _lots(self, rng: random.Random, asset: InstrumentId, demand: Decimal) -> None:
        """Lots assigned to buyers for more than the redemptions need; some partly redeemed
        already (a hole in the middle of the backing) and some free quantity."""
        need = demand * D("1.2") + 1
        n = 0
        while need > 0:
            n += 1
            quantity = demand * _share(rng) + _amount(rng, 6, rng.randint(2, 6))
            price, fee = _amount(rng, 7, 3), _amount(rng, 4, 6)
            assigned = quantity if rng.random() < 0.7 else quantity * D("0.5")
            assigned_lot(
                self.inventory,
                asset,
                f"b{asset}{n}",
                price,
                quantity,
                fee,
                NOW,
                f"buy{n}",
                assigned,
            )
            need -= assigned
            if rng.random() < 0.2:
                gone = self.inventory.backing(asset) * D("0.3")
                self.inventory.redeem(asset, gone)
                need += gone

    def state(self) -> tuple[Any, ...]:
        """Every figure the allocation changes, as text (a different exponent shows)."""
        s = str
        redemptions = [
            (s(r.sold), s(r.gross), s(r.exchange_fee), [_fields(d) for d in r.disposals])
            for r in self.redemptions
        ]  # fmt: skip
        batch = [
            (s(g.ratio), [(s(e.ratio), s(e.sold)) for e in g.entries])
            for g in self.batch.groups.values()
        ]
        legs = [
            (leg.cursor, s(leg.received), [(s(x.taken), s(x.fee_taken)) for x in leg.sales])
            for leg in self.batch.legs.values()
        ]
        inventory = [
            (
                s(self.inventory.held_quantity(a)),
                s(self.inventory.backing(a)),
                [s(lot.redeemed) for lot in self.inventory.lots(a)],
                [lot.lot_id for lot in self.inventory._backing.get(a, ())],
            )
            for a in ASSETS
        ]
        ahead = {
            a: [(s(x.taken), s(x.fee_taken)) for x in v] for a, v in self.allocator._ahead.items()
        }
        holdings = [
            (
                s(self.holdings.units[x]),
                s(self.holdings.cash[x]),
                sorted(map(s, self.holdings.held.get(x, {}).values())),
            )
            for x in BASKETS
        ]
        return redemptions, batch, legs, inventory, sorted(self.inventory._backed), ahead, holdings


def _fields(disposal: object) -> tuple[str, ...]:
    names = ("lot_id", "asset", "quantity", "cost_price", "cost_fee", "sale_price", "sale_fee")
    return tuple(str(getattr(disposal, n)) for n in (*names, "crossed"))


def _touched(entries: list[SellEntry]) -> list[str]:
    return [e.redemption.redemption_id for e in entries]


@pytest.mark.parametrize("context", [MONEY_CONTEXT, Context(prec=12)], ids=["money", "prec12"])
@pytest.mark.parametrize("seed", range(25))
def test_the_fast_allocation_matches_the_one_it_replaced(seed: int, context: Context) -> None:
    with localcontext(context):
        fast, old = World(seed, SellAllocator), World(seed, ReferenceAllocator)
        assert fast.state() == old.state()
        assert _touched(fast.allocator.open(fast.batch)) == _touched(old.allocator.open(old.batch))
        assert fast.state() == old.state()
        for a, b in zip(fast.fills, old.fills, strict=True):
            touched = _touched(fast.allocator.on_sale(fast.batch, a))
            assert touched == _touched(old.allocator.on_sale(old.batch, b))
            assert fast.state() == old.state()
        fast.allocator.close(fast.batch)
        old.allocator.close(old.batch)
        assert fast.state() == old.state()
    # The case did allocate: most redemptions got proceeds and disposed of lots.
    assert sum(len(r.disposals) for r in fast.redemptions) >= len(fast.redemptions)


def test_a_backing_too_short_raises_before_anything_changed() -> None:
    with localcontext(MONEY_CONTEXT):
        world = World(3, SellAllocator)
        asset = ASSETS[1]
        # Another redemption took the asset's backing down to almost nothing.
        world.inventory.redeem(asset, world.inventory.backing(asset) - D("0.001"))
        steps = [lambda: world.allocator.open(world.batch)] + [
            lambda sale=sale: world.allocator.on_sale(world.batch, sale) for sale in world.fills
        ]
        for step in steps:
            before = world.state()
            try:
                step()
            except InvariantViolation as error:
                assert "exceeds backing" in str(error)
                break
        else:
            raise AssertionError("the short backing was never noticed")
        # The failing step booked nothing: no redemption, entry, lot or inventory figure moved
        # (the fill itself is on its leg: the venue did sell it).
        redemptions, entries, _, inventory, backed, _, holdings = world.state()
        kept = (redemptions, entries, inventory, backed, holdings)
        assert kept == tuple(before[i] for i in (0, 1, 3, 4, 6))

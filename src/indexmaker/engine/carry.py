"""What a new buy batch may count on of an asset before buying more (SPEC §3 carry-over).

Padding an asset order up to the venue minimum buys more than its batch needs; the next
batch of the asset uses that surplus first. A batch formed while the padded one is still
in flight (the venue answers slower than a solver tick) must count the surplus too, or it
pads the asset again and the issuer's inventory grows with the number of overlapping
batches instead of staying about one venue minimum per asset. The batch that counted it
waits for the batches it counted on (`BatchManager.create`), which hand it their lots
when they complete (`BatchManager.complete`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from indexmaker.core.ids import InstrumentId
from indexmaker.core.money import exact_add, exact_multiply, exact_sub
from indexmaker.engine.batches import BatchManager
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.tracker import OrderTracker
from indexmaker.model.filters import InstrumentRules, received_share
from indexmaker.model.side import Side

ZERO = Decimal(0)


def open_surplus(
    batches: BatchManager,
    tracker: OrderTracker,
    rules: Mapping[InstrumentId, InstrumentRules],
    asset: InstrumentId,
) -> Decimal:
    """The quantity of `asset` (base units) the open buy batches will have left over once
    their exchange orders are done: over every open batch holding the asset, what arrived
    (carried lots, crossings, fills) plus what its open orders still bring (net of a
    commission the venue takes in the base asset) less what its orders need; never below 0.
    A batch that counted on others' surplus (`AssetPosition.counted`) brings less than it
    needs, by up to what it counted: that is not counted twice. A batch short for another
    reason (an order filled short and closed) is given nothing, so it takes nothing away."""
    share = received_share(rules.get(asset), Side.BUY)
    total = ZERO
    for batch in batches.open_batches():
        position = batch.positions.get(asset)
        if position is None:
            continue
        expected = position.received
        for order_id in position.order_ids:
            tracked = tracker.get(order_id)
            if tracked is None or tracked.status.is_final:
                continue
            left = exact_sub(tracked.command.quantity, tracked.filled)
            expected = exact_add(expected, exact_multiply(left, share))
        left_over = exact_sub(expected, position.demand)
        floor = -position.counted
        total = exact_add(total, left_over if left_over > floor else floor)
    return total if total > 0 else ZERO


def carried_quantity(
    inventory: InventoryManager,
    batches: BatchManager,
    tracker: OrderTracker,
    rules: Mapping[InstrumentId, InstrumentRules],
    asset: InstrumentId,
) -> Decimal:
    """What a new buy batch counts as carried for `asset` (base units): the free,
    unreserved lots it reserves at once and the open batches' surplus (`open_surplus`)."""
    free = inventory.free_quantity(asset)
    return exact_add(free, open_surplus(batches, tracker, rules, asset))

"""The venue's balances against the issuer's lots: reconciliation of balances.

Every lot the core opened is held at the venue until it is sold (`InventoryManager.held`), so
the venue's balance of a base asset (free + locked) must cover what our lots of it hold. A
balance below that means a fill we booked never reached the account, or something left it:
the operator is alerted (`balance_short`), and the orders that need the asset wait: no batch
(buy, sell or rebalance) trades an instrument of that base asset on that venue until a report
covers the lots again (issue 10: "the affected orders wait"; their hold is `balance_short`,
`blocked`). One short report is not enough: a balance sent just before a fill the core has
already booked is short for a moment, so the alert and the hold come when the next report of
that asset is still short.
"""

from __future__ import annotations

from collections.abc import Mapping

from indexmaker.core.events import Alert, VenueBalance
from indexmaker.core.ids import Asset, InstrumentId, Venue
from indexmaker.core.money import exact_add
from indexmaker.engine.inventory import InventoryManager
from indexmaker.model.filters import InstrumentRules


class VenueBalances:
    """The last balance each venue reported per asset, checked against the lots held."""

    def __init__(self, inventory: InventoryManager) -> None:
        self.inventory = inventory
        self.latest: dict[tuple[Venue, Asset], VenueBalance] = {}
        self._short_once: set[tuple[Venue, Asset]] = set()  # short on the last report
        self.short: set[tuple[Venue, Asset]] = set()  # alerted, not covered since

    def held(
        self, venue: Venue, asset: Asset, rules: Mapping[InstrumentId, InstrumentRules]
    ) -> tuple[InstrumentId, ...]:
        """The instruments of `venue` whose base asset is `asset` (lots of them hold it)."""
        return tuple(
            instrument
            for instrument, rule in rules.items()
            if instrument.venue == venue and rule.base_asset == asset
        )

    def blocked(self, rules: Mapping[InstrumentId, InstrumentRules]) -> dict[InstrumentId, str]:
        """The instruments whose base asset is short at their venue (alerted, not covered
        since), with the reason their orders wait."""
        held: dict[InstrumentId, str] = {}
        for venue, asset in sorted(self.short):
            event = self.latest[(venue, asset)]
            there = exact_add(event.free, event.locked)
            for instrument in self.held(venue, asset, rules):
                held[instrument] = (
                    f"{venue} {asset}: the venue holds {there}, less than our lots; waiting "
                    "for a balance that covers them (operator alert balance_short)"
                )
        return held

    def on_balance(
        self, event: VenueBalance, rules: Mapping[InstrumentId, InstrumentRules]
    ) -> list[Alert]:
        """Record `event`; an `Alert` when the asset is short twice in a row (once per
        shortfall: it is said again only after the balance covered the lots)."""
        key = (event.venue, event.asset)
        self.latest[key] = event
        instruments = self.held(event.venue, event.asset, rules)
        ours = exact_add(*(self.inventory.held_quantity(i) for i in instruments))
        there = exact_add(event.free, event.locked)
        if ours <= there:
            self._short_once.discard(key)
            self.short.discard(key)
            return []
        if key not in self._short_once:
            self._short_once.add(key)
            return []
        if key in self.short:
            return []
        self.short.add(key)
        return [
            Alert(
                "balance_short",
                f"{event.venue} {event.asset}: the venue holds {there} (free {event.free}, "
                f"locked {event.locked}), our lots hold {ours}",
            )
        ]

"""Our account's balances at Binance, kept from the user data stream (reference §6).

`account.status` gives every balance (at start and after a user-stream gap);
`outboundAccountPosition` gives the new free/locked of each asset an operation changed;
`balanceUpdate` (deposit, withdrawal, transfer) gives a signed delta `d`, applied to the known
balance (Binance follows it with an `outboundAccountPosition` that states the result). Each
change becomes a `VenueBalance` for the core, which checks it against the lots it holds
(engine/balances.py). Amounts stay exact Decimals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from indexmaker.core.events import VenueBalance
from indexmaker.core.ids import Asset, Venue
from indexmaker.core.money import dec, exact_add

ZERO = Decimal(0)


class Balances:
    """Free and locked per asset, as the venue last stated them."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.free: dict[Asset, Decimal] = {}
        self.locked: dict[Asset, Decimal] = {}

    def on_account(self, answer: Mapping[str, Any]) -> list[VenueBalance]:
        """`account.status` (or REST `account`): `{"balances": [{"asset", "free", "locked"}],
        "updateTime": ms}`. Every asset it lists is reported (a zero one included)."""
        rows = ((r["asset"], r["free"], r["locked"]) for r in answer.get("balances", ()))
        return self._set(rows, answer.get("updateTime"))

    def on_user_event(self, event: Mapping[str, Any]) -> list[VenueBalance]:
        """`outboundAccountPosition` or `balanceUpdate`; [] for any other event, or for a
        delta of an asset whose balance is not known yet (the next position states it)."""
        kind = event.get("e")
        if kind == "outboundAccountPosition":
            rows = ((b["a"], b["f"], b["l"]) for b in event.get("B", ()))
            return self._set(rows, event.get("u") or event.get("E"))
        if kind == "balanceUpdate":
            asset = Asset(str(event["a"]))
            if asset not in self.free:
                return []
            free = exact_add(self.free[asset], dec(str(event["d"])))
            return self._set([(asset, free, self.locked[asset])], event.get("T") or event.get("E"))
        return []

    def _set(self, rows: Iterable[tuple[Any, Any, Any]], at_ms: Any) -> list[VenueBalance]:
        at = datetime.fromtimestamp(int(at_ms) / 1000, UTC) if at_ms else None
        out = []
        for asset_text, free_text, locked_text in rows:
            asset = Asset(str(asset_text))
            free, locked = dec(str(free_text)), dec(str(locked_text))
            self.free[asset], self.locked[asset] = free, locked
            out.append(VenueBalance(self.venue, asset, free, locked, at))
        return out

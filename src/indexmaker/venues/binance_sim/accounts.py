"""Accounts of the simulated venue: balances (free, locked) per asset, and which assets an
operation changed (for `outboundAccountPosition`)."""

from __future__ import annotations

from decimal import Decimal

from indexmaker.venues.binance_sim.errors import rejected

ZERO = Decimal(0)
INSUFFICIENT = "Account has insufficient balance for requested action."


class Account:
    def __init__(self, name: str, uid: int) -> None:
        self.name = name
        self.uid = uid
        self.balances: dict[str, list[Decimal]] = {}  # asset -> [free, locked]
        self.changed: set[str] = set()
        self.version = 0  # counts changes: state_file.py saves only a changed state

    def _get(self, asset: str) -> list[Decimal]:
        entry = self.balances.get(asset)
        if entry is None:
            entry = self.balances[asset] = [ZERO, ZERO]
        return entry

    def free(self, asset: str) -> Decimal:
        return self._get(asset)[0]

    def locked(self, asset: str) -> Decimal:
        return self._get(asset)[1]

    def credit(self, asset: str, amount: Decimal) -> None:
        """Add to free (a deposit, a fill's proceeds); a negative amount takes from free."""
        entry = self._get(asset)
        entry[0] += amount
        self.changed.add(asset)
        self.version += 1

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move free to locked for an order; -2010 insufficient balance if free is short."""
        entry = self._get(asset)
        if entry[0] < amount:
            raise rejected(INSUFFICIENT)
        entry[0] -= amount
        entry[1] += amount
        self.changed.add(asset)
        self.version += 1

    def unlock(self, asset: str, amount: Decimal) -> None:
        entry = self._get(asset)
        entry[1] -= amount
        entry[0] += amount
        self.changed.add(asset)
        self.version += 1

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        """A fill pays out of what its order locked."""
        entry = self._get(asset)
        entry[1] -= amount
        self.changed.add(asset)
        self.version += 1

    def take_changes(self) -> list[str]:
        changed = sorted(self.changed)
        self.changed.clear()
        return changed

    def balance_rows(
        self, assets: list[str] | None = None, omit_zero: bool = False
    ) -> list[dict[str, str]]:
        names = assets if assets is not None else sorted(self.balances)
        rows = []
        for asset in names:
            free, locked = self._get(asset)
            if omit_zero and not free and not locked:
                continue
            rows.append({"asset": asset, "free": f"{free:.8f}", "locked": f"{locked:.8f}"})
        return rows

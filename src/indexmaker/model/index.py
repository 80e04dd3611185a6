"""Index definitions: a basket of assets with a fixed quantity per one index unit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import DEFAULT_VENUE, InstrumentId, Symbol, Venue, instrument

# The published files give quantities as JSON numbers; we read them as exact decimals
# (parse_float=Decimal keeps every digit of the text, no float in between).
BUNDLED_INDEXES = ("SY100", "SYAI", "SYAZ", "SYDF", "SYL2", "SYME")


@dataclass(frozen=True, slots=True)
class BasketAsset:
    instrument: InstrumentId  # e.g. binance:BTCUSDC
    quantity: Decimal  # units of the asset per one index unit
    weight: Decimal = Decimal(0)  # percent, informational


@dataclass(frozen=True, slots=True)
class Basket:
    symbol: Symbol
    assets: tuple[BasketAsset, ...]
    # 1 for the published definition; each rebalance (engine/rebalance.py) gives the next,
    # and every invoice names the version its units were bought or sold on.
    version: int = 1

    def __post_init__(self) -> None:
        if not self.assets:
            raise InvalidInputError("assets", f"index {self.symbol} has an empty basket")
        seen: set[InstrumentId] = set()
        for asset in self.assets:
            if asset.quantity <= 0:
                raise InvalidInputError(
                    "quantity", f"{asset.instrument} in {self.symbol} must be > 0"
                )
            if asset.instrument in seen:
                raise InvalidInputError("pair", f"{asset.instrument} twice in {self.symbol}")
            seen.add(asset.instrument)

    def index_price(self, asset_prices: Mapping[InstrumentId, Decimal]) -> Decimal | None:
        """Σ basket quantity × asset price; None if any asset has no price."""
        total = Decimal(0)
        for asset in self.assets:
            price = asset_prices.get(asset.instrument)
            if price is None:
                return None
            total += asset.quantity * price
        return total


def basket_from_entries(
    symbol: str, entries: Iterable[Mapping[str, Any]], venue: Venue = DEFAULT_VENUE
) -> Basket:
    """A basket from the published entries (`pair`, `quantity`, `weights`), every pair traded
    on `venue`."""
    assets = []
    for position, entry in enumerate(entries):
        try:
            pair = str(entry["pair"])
            quantity = _exact(entry["quantity"])
            weight = _exact(entry.get("weights", "0"))
        except KeyError as missing:
            raise InvalidInputError(f"[{position}].{missing.args[0]}", "missing") from None
        assets.append(BasketAsset(instrument(pair, venue), quantity, weight))
    return Basket(Symbol(symbol), tuple(assets))


def load_index_file(path: Path | str, symbol: str | None = None) -> Basket:
    path = Path(path)
    with path.open() as handle:
        entries = json.load(handle, parse_float=Decimal)
    return basket_from_entries(symbol or path.stem, entries)


def load_bundled_index(symbol: str) -> Basket:
    """One of the six published index definitions shipped with the package."""
    if symbol not in BUNDLED_INDEXES:
        raise InvalidInputError("symbol", f"no bundled index {symbol!r}")
    text = resources.files("indexmaker.data").joinpath(f"indexes/{symbol}.json").read_text()
    return basket_from_entries(symbol, json.loads(text, parse_float=Decimal))


def implied_prices(
    basket: Basket, anchor: InstrumentId, anchor_price: Decimal
) -> dict[InstrumentId, Decimal]:
    """Prices implied by weights: price = weight/100 × V / quantity, V fixed by one anchor.

    See shared/data/README.md: every entry of one index shares the index value V.
    """
    by_symbol = {asset.instrument: asset for asset in basket.assets}
    if anchor not in by_symbol:
        raise InvalidInputError("anchor", f"{anchor} is not in {basket.symbol}")
    ref = by_symbol[anchor]
    index_value = anchor_price * ref.quantity * 100 / ref.weight
    return {a.instrument: a.weight / 100 * index_value / a.quantity for a in basket.assets}


def _exact(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        return Decimal(value)
    raise InvalidInputError("quantity", f"not an exact number: {value!r}")

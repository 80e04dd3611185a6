"""The connector's order book: exact prices as integers of 1e-8, quantities kept as sent.

Binance sends prices and quantities as decimal strings with at most 8 decimals. Levels are
keyed by the price's canonical 8-decimal string and ordered by its integer number of 1e-8
units, so no `Decimal` is built or hashed on the diff path (that hash dominated it,
PERFORMANCE.md), and nothing is rounded: a price with more than 8 significant decimals is
refused, not truncated. Quantities
are only stored and compared with zero, so they stay the venue's strings until read. Reads
return exact `Decimal`s, the same values `model.book.OrderBook` would hold. Measured: about
2x the Decimal-keyed book on the same frames (docs/benchmarks.md).

Diffs are applied lazily: `apply_update` only merges the diff into a queue (a price's last
change wins, as applying the diffs one by one would leave it), applied at the next read or
`flush`, so the per-level work is done once per price changed between two reads, not
once per message (the per-level loop was ~65 % of the connector's CPU at Binance's pace). The
owner (`BookSync`) flushes every few diffs to check the book; a level that cannot be read
leaves the book empty and `broken` (never half-applied levels to a reader).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from indexmaker.core.errors import InvalidInputError
from indexmaker.model.side import BookSide

SCALE = 8  # Binance's price precision ceiling (quote/base asset precision <= 8)
_ONE = 10**SCALE
_ZERO_CHARS = "0."
_ZERO_QTY = "0." + "0" * SCALE  # the venue's spelling of a removed level

RawLevel = tuple[str, str]  # (price, quantity) as the venue sent them


def price_units(text: str) -> int:
    """'65012.34000000' -> 6501234000000 (units of 1e-8), exactly; refuses what is not."""
    whole, _, fraction = text.partition(".")
    if len(fraction) > SCALE:
        extra = fraction[SCALE:]
        if extra.strip("0"):
            raise InvalidInputError("price", f"{text} has more than {SCALE} decimals")
        fraction = fraction[:SCALE]
    try:
        units = int(whole + fraction.ljust(SCALE, "0"))
    except ValueError as exc:
        raise InvalidInputError("price", f"not a decimal: {text!r}") from exc
    if units <= 0:
        raise InvalidInputError("price", f"must be positive, got {text}")
    return units


def _is_zero(quantity: str) -> bool:
    if quantity[:1] == "-":
        raise InvalidInputError("quantity", f"must be >= 0, got {quantity}")
    return not quantity.strip(_ZERO_CHARS)


def canonical(units: int) -> str:
    """The venue's own spelling of a price: 8 decimals, no leading zeros ('100.50000000')."""
    whole, fraction = divmod(units, _ONE)
    return f"{whole}.{fraction:08d}"


class _Side:
    """Quantities keyed by the price's canonical string (a str hash is cached by the string
    and cheap to compute) and each price's integer units, signed so that the best is the
    largest (bids +units, asks -units). Nothing is kept sorted on the diff path: an update
    of an existing level is one dict store, a new level parses its price once, a removal
    parses nothing; only the best price is tracked (a new better level raises it, removing
    it forgets it until the next read, which takes the max in C). Reads sort on demand:
    the diff path runs ~10 times a second per symbol, full reads when a snapshot is
    handed over."""

    __slots__ = ("_best", "qty", "sign", "units")

    def __init__(self, sign: int) -> None:
        self.sign = sign  # +1 bids, -1 asks
        self.qty: dict[str, str] = {}
        self.units: dict[str, int] = {}  # canonical price -> sign * units of 1e-8
        self._best: int | None = None  # the largest of `units`, None when unknown or empty

    def replace(self, levels: Iterable[RawLevel]) -> None:
        qty: dict[str, str] = {}
        units: dict[str, int] = {}
        for price, quantity in levels:
            if not _is_zero(quantity):
                value = price_units(price)
                key = canonical(value)
                units[key] = self.sign * value
                qty[key] = quantity
        self.qty = qty
        self.units = units
        self._best = None

    def best(self) -> int | None:
        """The best price's signed units (None: no level)."""
        best = self._best
        if best is None and self.units:
            best = self._best = max(self.units.values())
        return best

    def ordered(self) -> list[int]:
        """Every price's signed units, best first."""
        return sorted(self.units.values(), reverse=True)

    def set_levels(self, levels: Iterable[RawLevel], respelled: list[str] | None = None) -> None:
        """Set each level in turn (quantity 0 removes). A price not in the venue's spelling
        is keyed by it; with `respelled`, that key is also appended there."""
        qty = self.qty
        units = self.units
        best = self._best
        dot = -SCALE - 1
        try:
            for price, quantity in levels:
                # hot loop, no helper calls in the common cases: the venue's own spelling
                if (
                    len(price) > SCALE
                    and price[dot] == "."
                    and (price[0] != "0" or price[1] == ".")
                ):
                    key = price
                else:
                    key = canonical(price_units(price))
                    if respelled is not None:
                        respelled.append(key)
                if quantity == _ZERO_QTY:  # Binance's removal: quantity "0.00000000"
                    value = units.pop(key, None)
                    if value is not None:
                        del qty[key]
                        if value == best:
                            best = None
                elif quantity[:1] == "-":
                    raise InvalidInputError("quantity", f"must be >= 0, got {quantity}")
                elif key in qty:
                    if quantity.strip(_ZERO_CHARS):
                        qty[key] = quantity
                    else:  # zero spelled otherwise ("0", "0.0")
                        del qty[key]
                        if units.pop(key) == best:
                            best = None
                elif quantity.strip(_ZERO_CHARS):  # a new level: its price is parsed once
                    digits = key.replace(".", "")
                    if not digits.isdigit() or not digits.isascii():
                        raise InvalidInputError("price", f"not a decimal: {key!r}")
                    value = int(digits)
                    if value <= 0:
                        raise InvalidInputError("price", f"must be positive, got {key}")
                    value *= self.sign
                    if best is not None and value > best:
                        best = value
                    elif not units:
                        best = value  # the only level
                    units[key] = value
                    qty[key] = quantity
        finally:
            self._best = best


class TickBook:
    """One symbol's levels; the read side speaks exact `Decimal`s. Reads apply queued diffs
    first; `broken` says why the book was emptied (a level it could not read), else None."""

    __slots__ = ("_ask_changes", "_asks", "_bid_changes", "_bids", "broken", "pending", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids = _Side(1)
        self._asks = _Side(-1)
        # Queued changes, merged as they arrive (a price's last change wins): memory grows
        # with the prices changed, not the diffs, and dicts of strings are not tracked by the
        # garbage collector (a queue of the decoder's diffs cost ~3.7 KB a diff and made
        # collections dearer; measured).
        self._bid_changes: dict[str, str] = {}
        self._ask_changes: dict[str, str] = {}
        self.pending = 0  # diffs queued since the last flush
        self.broken: str | None = None

    def apply_snapshot(self, bids: Iterable[RawLevel], asks: Iterable[RawLevel]) -> None:
        fresh_bids, fresh_asks = _Side(1), _Side(-1)
        fresh_bids.replace(bids)  # both sides parsed before either is replaced
        fresh_asks.replace(asks)
        self._bids, self._asks = fresh_bids, fresh_asks
        self._drop_queue()
        self.broken = None

    def apply_update(self, bids: Iterable[RawLevel], asks: Iterable[RawLevel]) -> None:
        """Queue a diff's levels (quantity 0 removes), applied at the next read or `flush`.
        Merged at once, in C: a price's later change replaces its earlier one, which is what
        applying the diffs in order leaves as long as a price is spelled one way (Binance
        always writes 8 decimals); `flush` refuses a queue where it was not."""
        try:
            self._bid_changes.update(bids)
            self._ask_changes.update(asks)
        except (TypeError, ValueError):  # not (price, quantity) pairs
            self.broken = self.broken or "a level is not a (price, quantity) pair"
        self.pending += 1

    def flush(self) -> str | None:
        """Apply the queued diffs; returns `broken`. A level that cannot be read (a price with
        more than 8 decimals, not a number, a negative quantity), or one price spelled two
        ways in the queue (which came last is not known), empties the book and sets `broken`
        to the reason: its state is unknown, only a new snapshot repairs it."""
        if not self.pending:
            return self.broken
        bids, asks = self._bid_changes, self._ask_changes
        self._drop_queue()
        try:
            if self.broken is not None:
                raise InvalidInputError("level", self.broken)
            for side, changes in ((self._bids, bids), (self._asks, asks)):
                respelled: list[str] = []
                side.set_levels(changes.items(), respelled)
                for key in respelled:
                    if respelled.count(key) + (key in changes) > 1:
                        raise InvalidInputError("price", f"{key} spelled two ways in a queue")
        except InvalidInputError as exc:
            self._bids, self._asks = _Side(1), _Side(-1)
            self.broken = str(exc)
        return self.broken

    def _drop_queue(self) -> None:
        self._bid_changes = {}
        self._ask_changes = {}
        self.pending = 0

    def clear(self) -> None:
        self._bids = _Side(1)
        self._asks = _Side(-1)
        self._drop_queue()
        self.broken = None

    @property
    def is_empty(self) -> bool:
        self.flush()
        return not self._bids.units and not self._asks.units

    def crossed(self) -> bool:
        self.flush()
        bid = self._bids.best()
        if bid is None:
            return False
        ask = self._asks.best()
        return ask is not None and bid >= -ask

    def depth(self) -> tuple[int, int]:
        self.flush()
        return len(self._bids.units), len(self._asks.units)

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        self.flush()
        return _top(self._bids)

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        self.flush()
        return _top(self._asks)

    def best_prices(self) -> tuple[Decimal | None, Decimal | None]:
        self.flush()
        bid, ask = self._bids.best(), self._asks.best()
        return (
            _price(bid) if bid is not None else None,
            _price(-ask) if ask is not None else None,
        )

    def levels(self, side: BookSide, depth: int) -> list[tuple[Decimal, Decimal]]:
        """The first `depth` levels of a side, best first, as exact Decimals."""
        self.flush()
        book_side = self._bids if side is BookSide.BIDS else self._asks
        sign, qty = book_side.sign, book_side.qty
        top = book_side.ordered()[:depth] if depth > 0 else []
        return [(_price(sign * v), Decimal(qty[canonical(sign * v)])) for v in top]


def _top(side: _Side) -> tuple[Decimal, Decimal] | None:
    best = side.best()
    if best is None:
        return None
    units = side.sign * best
    return _price(units), Decimal(side.qty[canonical(units)])


def _price(units: int) -> Decimal:
    return Decimal(units).scaleb(-SCALE)

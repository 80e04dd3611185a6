"""Order side (what an order does: buy or sell), with the wire spellings of SPEC §5, and book
side (where a level rests: bids or asks). A taker of one side trades against the other book."""

from __future__ import annotations

from enum import Enum

_BUY_SPELLINGS = frozenset({"1", "buy", "b", "bid"})
_SELL_SPELLINGS = frozenset({"2", "sell", "s", "ask", "a"})


class Side(Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def taken_book(self) -> BookSide:
        """The book side a taker of this side trades against: a buy takes asks."""
        return BookSide.ASKS if self is Side.BUY else BookSide.BIDS

    @property
    def resting_book(self) -> BookSide:
        """The book side an order of this side rests on: a buy rests on the bids."""
        return BookSide.BIDS if self is Side.BUY else BookSide.ASKS

    @classmethod
    def parse(cls, text: str) -> Side:
        """Accept "1"/"buy"/"b"/"bid" and "2"/"sell"/"s"/"ask"/"a", any case."""
        lowered = text.strip().lower()
        if lowered in _BUY_SPELLINGS:
            return cls.BUY
        if lowered in _SELL_SPELLINGS:
            return cls.SELL
        raise ValueError(f"unknown side {text!r}")


class BookSide(Enum):
    """A side of an order book. Not a `Side`: passing one where the other is due is a type
    error, so "levels of BUY" can no longer mean the bids in one call and the asks in another."""

    BIDS = "bids"
    ASKS = "asks"

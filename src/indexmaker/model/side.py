"""Order side, with the wire spellings of SPEC §5."""

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

    @classmethod
    def parse(cls, text: str) -> Side:
        """Accept "1"/"buy"/"b"/"bid" and "2"/"sell"/"s"/"ask"/"a", any case."""
        lowered = text.strip().lower()
        if lowered in _BUY_SPELLINGS:
            return cls.BUY
        if lowered in _SELL_SPELLINGS:
            return cls.SELL
        raise ValueError(f"unknown side {text!r}")

"""The price of ETH in USDC that a hop's gas is charged at (SPEC §1 "fees per hop"; issue 11).

Gas is paid in ETH; the lot's fee is in USDC. The price is the venue's own ETHUSDC mid
((best bid + best ask) / 2, exact) from its public book ticker (Binance
`GET /api/v3/ticker/bookTicker?symbol=ETHUSDC`, weight 2), asked at most once per `ttl`
seconds. When no price is known — the venue does not list the pair, its book is empty on a
side, or the request fails — the fixed `fallback` (the `eth_usdc` setting, 3000 by default)
is used and a warning names why; a failure is asked about again after `ttl` too.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any, Protocol

from indexmaker.core.money import exact_add, exact_multiply
from indexmaker.observability.logging import log_event

HALF = Decimal("0.5")
BOOK_TICKER = "/api/v3/ticker/bookTicker"
BOOK_TICKER_WEIGHT = 2  # one symbol (Binance spot API docs)


class PriceSource(Protocol):
    """What gas pricing needs: USDC per ETH now (never raises)."""

    async def eth_usdc(self) -> Decimal: ...


class FixedEthPrice:
    """Always `price` (no venue to ask)."""

    def __init__(self, price: Decimal) -> None:
        self.price = price

    async def eth_usdc(self) -> Decimal:
        return self.price


class PublicRest(Protocol):
    async def public(
        self, path: str, params: Any = None, *, weight: int = 1
    ) -> Any: ...  # venues/binance/rest.py BinanceRest.public


class VenueEthPrice:
    """ETHUSDC mid from the venue's book ticker, cached `ttl` s; `fallback` when unknown."""

    def __init__(
        self,
        rest: PublicRest,
        fallback: Decimal,
        *,
        pair: str = "ETHUSDC",
        ttl_s: float = 60.0,
    ) -> None:
        self._rest, self.fallback, self.pair, self.ttl_s = rest, fallback, pair, ttl_s
        self._price: Decimal | None = None
        self._asked = float("-inf")
        self.source = "none"  # "venue" or "fallback": where the last price came from

    async def eth_usdc(self) -> Decimal:
        now = time.monotonic()
        if now - self._asked >= self.ttl_s:
            self._asked = now
            self._price = await self._mid()
        if self._price is None:
            self.source = "fallback"
            return self.fallback
        self.source = "venue"
        return self._price

    async def _mid(self) -> Decimal | None:
        try:
            ticker = await self._rest.public(
                BOOK_TICKER, {"symbol": self.pair}, weight=BOOK_TICKER_WEIGHT
            )
            bid, ask = Decimal(ticker["bidPrice"]), Decimal(ticker["askPrice"])
        except Exception as error:  # any failure: the fixed price
            self._warn(f"{type(error).__name__}: {error}")
            return None
        if not (bid.is_finite() and ask.is_finite()) or bid <= 0 or ask <= 0:
            self._warn(f"no two-sided book (bid {bid}, ask {ask})")
            return None
        return exact_multiply(exact_add(bid, ask), HALF)

    def _warn(self, reason: str) -> None:
        log_event(
            "eth_price_fallback",
            logging.WARNING,
            pair=self.pair,
            fallback=str(self.fallback),
            reason=reason,
        )

"""Traded instruments maintained from `exchangeInfo` (pure: the caller fetches it).

A symbol is tradable while its status is TRADING, spot trading is allowed and its filters parse
(SPEC §6: a symbol without known filters is not traded). Each refresh returns what changed, so
the venue adapter can take a symbol that stopped trading (HALT, BREAK, CANCEL_ONLY, delisted:
absent from the answer) out of new batches, reconcile its open orders and alert the operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import DEFAULT_VENUE, InstrumentId, Pair, Venue
from indexmaker.engine.throttle import RateLimiter
from indexmaker.model.filters import InstrumentRules
from indexmaker.venues.binance.limits import limiter_from
from indexmaker.venues.binance.wire import ExchangeInfo, RateLimitInfo


@dataclass(frozen=True, slots=True)
class InstrumentChanges:
    added: tuple[InstrumentId, ...] = ()
    removed: tuple[tuple[InstrumentId, str], ...] = ()  # (which, why: its status or "delisted")
    unparsable: tuple[tuple[InstrumentId, str], ...] = ()  # filters we could not read


@dataclass(slots=True)
class Instruments:
    """The tradable symbols among `wanted` (None: every symbol the venue lists)."""

    wanted: frozenset[Pair] | None = None
    venue: Venue = DEFAULT_VENUE
    rules: dict[InstrumentId, InstrumentRules] = field(default_factory=dict)
    rate_limits: list[RateLimitInfo] = field(default_factory=list)
    # The account's taker rate, taken in the base asset on a buy (Binance's received asset):
    # the core grosses buys up by it (SPEC §6). 0 until the account's rates are known.
    buy_base_commission: Decimal = Decimal(0)

    def apply(self, info: ExchangeInfo) -> InstrumentChanges:
        """Take a fresh `exchangeInfo`; returns what changed since the last one."""
        fresh: dict[InstrumentId, InstrumentRules] = {}
        stopped: dict[InstrumentId, str] = {}
        unparsable: list[tuple[InstrumentId, str]] = []
        for entry in info.symbols:
            if self.wanted is not None and entry.symbol not in self.wanted:
                continue
            symbol = InstrumentId(self.venue, Pair(entry.symbol))
            if entry.status != "TRADING" or not entry.isSpotTradingAllowed:
                stopped[symbol] = entry.status
                continue
            try:
                fresh[symbol] = InstrumentRules.from_binance(
                    {
                        "symbol": entry.symbol,
                        "baseAsset": entry.baseAsset,
                        "quoteAsset": entry.quoteAsset,
                        "filters": entry.filters,
                    },
                    self.venue,
                    self.buy_base_commission,
                )
            except InvalidInputError as exc:
                unparsable.append((symbol, str(exc)))
        removed = tuple(
            (symbol, stopped.get(symbol, "delisted"))
            for symbol in sorted(self.rules)
            if symbol not in fresh
        )
        added = tuple(sorted(symbol for symbol in fresh if symbol not in self.rules))
        self.rules = fresh
        if info.rateLimits:
            self.rate_limits = list(info.rateLimits)
        return InstrumentChanges(added, removed, tuple(unparsable))

    def limiter(self) -> RateLimiter:
        return limiter_from(self.rate_limits)

    def tradable(self) -> Iterable[InstrumentId]:
        return sorted(self.rules)

"""Quote manager: open quote requests, answered on the solver's next tick."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from indexmaker.core.events import (
    CancelIndexQuoteResponse,
    CancelQuoteRequest,
    ClientResponse,
    IndexQuoteResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    RequestStatus,
)
from indexmaker.core.ids import ClientKey, ClientQuoteId, Symbol
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.model.index import Basket
from indexmaker.model.side import Side

ZERO = Decimal(0)

QuoteKey = tuple[ClientKey, ClientQuoteId]


class QuoteManager:
    def __init__(self, config: SolverConfig) -> None:
        self._config = config
        self._open: dict[QuoteKey, NewQuoteRequest] = {}

    def request(self, request: NewQuoteRequest, known_symbol: bool) -> NewIndexQuoteResponse:
        key = (request.client, request.client_quote_id)
        reason = None
        if not known_symbol:
            reason = f"unknown symbol {request.symbol}"
        elif request.side is Side.SELL:
            reason = "sell quotes (redemption) are not available yet"
        elif not request.amount.is_finite() or request.amount <= 0:
            reason = "amount must be > 0"
        elif key in self._open:
            reason = f"quote {request.client_quote_id} is already open"
        if reason is not None:
            return NewIndexQuoteResponse(request.client_quote_id, RequestStatus.REJECTED, reason)
        self._open[key] = request
        return NewIndexQuoteResponse(request.client_quote_id, RequestStatus.NEW)

    def cancel(self, request: CancelQuoteRequest) -> CancelIndexQuoteResponse:
        key = (request.client, request.client_quote_id)
        open_request = self._open.get(key)
        if open_request is None or open_request.symbol != request.symbol:
            return CancelIndexQuoteResponse(
                request.client_quote_id,
                RequestStatus.REJECTED,
                f"no open quote {request.client_quote_id} for {request.symbol}",
            )
        del self._open[key]
        return CancelIndexQuoteResponse(request.client_quote_id, RequestStatus.CANCELED)

    def pending(self) -> int:
        return len(self._open)

    def answer(
        self, baskets: Mapping[Symbol, Basket], market: MarketData
    ) -> list[tuple[ClientKey, ClientResponse]]:
        """Price every open quote at current limit prices; unpriceable ones wait."""
        answers: list[tuple[ClientKey, ClientResponse]] = []
        for key, request in list(self._open.items()):
            quote = self.compute(baskets[request.symbol], market, request.amount)
            if quote is None:
                continue
            possible, fillable, price = quote
            del self._open[key]
            answers.append(
                (
                    request.client,
                    IndexQuoteResponse(request.client_quote_id, possible, fillable, price),
                )
            )
        return answers

    def compute(
        self, basket: Basket, market: MarketData, amount: Decimal, side: Side = Side.BUY
    ) -> tuple[Decimal, Decimal, Decimal] | None:
        """(quantity_possible, quantity_fillable_now, index_price) for a taker of `side`, or
        None without prices. Only buys are quoted (`request` refuses sells) until redemption
        defines what a sell's amount is."""
        cfg = self._config
        index_price = ZERO
        fillable_cap: Decimal | None = None
        for asset in basket.assets:
            limit = market.limit_price(asset.instrument, side, cfg.price_threshold)
            book = market.book(asset.instrument)
            if limit is None or book is None:
                return None
            index_price += asset.quantity * limit
            units = book.taker_liquidity(side, limit, cfg.max_levels) / asset.quantity
            fillable_cap = units if fillable_cap is None else min(fillable_cap, units)
        possible = amount / cfg.fee_factor / index_price
        usable = min(amount / cfg.fee_factor, cfg.max_order_volley) / index_price
        fillable = min(usable, fillable_cap if fillable_cap is not None else ZERO)
        return possible, fillable, index_price

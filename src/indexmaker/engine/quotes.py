"""Quote manager: open quote requests, answered on the solver's next tick."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from indexmaker.core.money import round_index_down, round_usdc
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
        self,
        baskets: Mapping[Symbol, Basket],
        market: MarketData,
        routing_fee: Callable[[ClientKey, Decimal], Decimal] | None = None,
    ) -> list[tuple[ClientKey, ClientResponse]]:
        """Price every open quote at current limit prices; unpriceable ones wait.
        `routing_fee(client, amount)` gives the routing fees an order would be charged."""
        answers: list[tuple[ClientKey, ClientResponse]] = []
        for key, request in list(self._open.items()):
            fee = routing_fee(request.client, request.amount) if routing_fee else ZERO
            quote = self.compute(baskets[request.symbol], market, request.amount, fee)
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
        self,
        basket: Basket,
        market: MarketData,
        amount: Decimal,
        routing_fee: Decimal = ZERO,
        side: Side = Side.BUY,
    ) -> tuple[Decimal, Decimal, Decimal] | None:
        """(quantity_possible, quantity_fillable_now, index_price) for a taker of `side`, or
        None without prices. Only buys are quoted (`request` refuses sells) until redemption
        defines what a sell's amount is.

        SPEC §4: possible = ((amount − routing_fee) / fee_factor) / P at current limit prices;
        fillable_now = the same capped by max_order_volley and fitted to the visible liquidity.
        Index quantities are rounded down to the token's 18 decimals, P (USDC) to 6.
        """
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
        net = amount - routing_fee
        if net < 0:
            net = ZERO
        possible = net / cfg.fee_factor / index_price
        usable = min(net / cfg.fee_factor, cfg.max_order_volley) / index_price
        fillable = min(usable, fillable_cap if fillable_cap is not None else ZERO)
        return round_index_down(possible), round_index_down(fillable), round_usdc(index_price)

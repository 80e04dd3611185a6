"""Quote manager: open quote requests, answered on the solver's next tick."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial

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
from indexmaker.core.money import (
    exact_add,
    exact_multiply,
    index_units_down,
    round_index_down,
    round_usdc,
)
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.engine.sell_proceeds import least_net
from indexmaker.model.index import Basket
from indexmaker.model.side import Side

ZERO = Decimal(0)

QuoteKey = tuple[ClientKey, ClientQuoteId]


class QuoteManager:
    def __init__(self, config: SolverConfig) -> None:
        self._config = config
        self._open: dict[QuoteKey, NewQuoteRequest] = {}

    def request(
        self,
        request: NewQuoteRequest,
        known_symbol: bool,
        sell_refusal: Callable[[NewQuoteRequest], str | None] | None = None,
    ) -> NewIndexQuoteResponse:
        """Open a quote, or refuse it with the reason: unknown symbol, amount not > 0, id
        already open, or a sell that `sell_refusal` refuses (the reason a sell order of that
        size gets its NAK with: below min_order at the bids, engine/sell_size.py)."""
        key = (request.client, request.client_quote_id)
        reason = None
        if not known_symbol:
            reason = f"unknown symbol {request.symbol}"
        elif not request.amount.is_finite() or request.amount <= 0:
            reason = "amount must be > 0"
        elif key in self._open:
            reason = f"quote {request.client_quote_id} is already open"
        elif request.side is Side.SELL and sell_refusal is not None:
            reason = sell_refusal(request)
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
        sell_baskets: Mapping[Symbol, Basket] | None = None,
        withdrawal_fee: Callable[[ClientKey, Decimal], Decimal] | None = None,
        sell_refusal: Callable[[NewQuoteRequest], str | None] | None = None,
    ) -> list[tuple[ClientKey, ClientResponse]]:
        """Price every open quote at current limit prices; unpriceable ones wait.
        `routing_fee(client, amount)` gives the routing fees an order would be charged;
        `sell_baskets` what a redemption of each index sells (after a rebalance, its
        holdings; default `baskets`), `withdrawal_fee(client, usdc)` what withdrawing the
        proceeds and paying them to that client is expected to cost. A sell quote that
        `sell_refusal` refuses now (it could not be valued when asked: no bids then) is
        answered REJECTED with the reason instead of a price."""
        answers: list[tuple[ClientKey, ClientResponse]] = []
        for key, request in list(self._open.items()):
            refused = sell_refusal(request) if sell_refusal and request.side is Side.SELL else None
            if refused is not None:
                del self._open[key]
                rejected = NewIndexQuoteResponse(
                    request.client_quote_id, RequestStatus.REJECTED, refused
                )
                answers.append((request.client, rejected))
                continue
            if request.side is Side.SELL:
                basket = (sell_baskets or baskets)[request.symbol]
                client = request.client
                client_fee = None if withdrawal_fee is None else partial(withdrawal_fee, client)
                response = self._sell_quote(request, basket, market, client_fee)
            else:
                fee = routing_fee(request.client, request.amount) if routing_fee else ZERO
                quote = self.compute(baskets[request.symbol], market, request.amount, fee)
                response = (
                    None if quote is None else IndexQuoteResponse(request.client_quote_id, *quote)
                )
            if response is None:
                continue
            del self._open[key]
            answers.append((request.client, response))
        return answers

    def compute(
        self,
        basket: Basket,
        market: MarketData,
        amount: Decimal,
        routing_fee: Decimal = ZERO,
    ) -> tuple[Decimal, Decimal, Decimal] | None:
        """A buy quote: (quantity_possible, quantity_fillable_now, index_price), or None
        without prices.

        SPEC §4: possible = ((amount − routing_fee) / fee_factor) / P at current limit prices;
        fillable_now = the same capped by max_order_volley and fitted to the visible liquidity.
        Index quantities are rounded down to the token's 18 decimals, P (USDC) to 6.
        """
        cfg = self._config
        priced = self._price(basket, market, Side.BUY)
        if priced is None:
            return None
        index_price, fillable_cap = priced
        net = amount - routing_fee
        if net < 0:
            net = ZERO
        # net / fee_factor / P as one exact quotient on 18 decimals (two 34-digit divisions
        # could round across a token unit); the volley cap compared exactly.
        per_unit = exact_multiply(cfg.fee_factor, index_price)
        possible = index_units_down(net, per_unit)
        capped = net > exact_multiply(cfg.max_order_volley, cfg.fee_factor)
        usable = index_units_down(cfg.max_order_volley, index_price) if capped else possible
        fillable = min(usable, round_index_down(fillable_cap))
        return possible, fillable, round_usdc(index_price)

    def compute_sell(
        self,
        basket: Basket,
        market: MarketData,
        units: Decimal,
        withdrawal_fee: Callable[[Decimal], Decimal] | None = None,
    ) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
        """A sell (redemption) quote of `units` index units: (quantity_possible,
        quantity_fillable_now, index_price, expected_proceeds), or None without prices.

        SPEC §4 mirrored for a seller (issue 12): P at the sell limit prices (best bid ×
        (1 − price_threshold) per asset); possible = units; fillable_now = units capped by
        max_order_volley / P and fitted to the visible bid liquidity within the limits;
        expected proceeds = `least_net(units × P)` (engine/sell_proceeds.py: the exchange fee
        at fee_factor − 1, the withdrawal's rounding and `withdrawal_fee(usdc)` taken off, in
        the client's favour): the very figure a sell's floor is checked against, so a floor
        set to it sells while the bids stay. Units round down to 18 decimals, P (USDC) to 6
        half-even.
        """
        cfg = self._config
        priced = self._price(basket, market, Side.SELL)
        if priced is None:
            return None
        index_price, fillable_cap = priced
        most = index_units_down(cfg.max_order_volley, index_price)
        fillable = min(units, most, round_index_down(fillable_cap))
        value = exact_multiply(units, index_price)
        return (
            round_index_down(units),
            round_index_down(fillable),
            round_usdc(index_price),
            least_net(value, cfg.fee_factor, withdrawal_fee),
        )

    def _sell_quote(
        self,
        request: NewQuoteRequest,
        basket: Basket,
        market: MarketData,
        withdrawal_fee: Callable[[Decimal], Decimal] | None,
    ) -> IndexQuoteResponse | None:
        quote = self.compute_sell(basket, market, request.amount, withdrawal_fee)
        if quote is None:
            return None
        possible, fillable, price, proceeds = quote
        return IndexQuoteResponse(request.client_quote_id, possible, fillable, price, proceeds)

    def _price(
        self, basket: Basket, market: MarketData, side: Side
    ) -> tuple[Decimal, Decimal] | None:
        """(P at the limit prices of a taker of `side`, the index units the visible
        liquidity within those limits allows), or None if an asset has no price or book."""
        cfg = self._config
        index_price = ZERO
        fillable_cap: Decimal | None = None
        for asset in basket.assets:
            limit = market.limit_price(asset.instrument, side, cfg.price_threshold)
            book = market.book(asset.instrument)
            if limit is None or book is None:
                return None
            index_price = exact_add(index_price, exact_multiply(asset.quantity, limit))
            units = book.taker_liquidity(side, limit, cfg.max_levels) / asset.quantity
            fillable_cap = units if fillable_cap is None else min(fillable_cap, units)
        if fillable_cap is None or index_price <= 0:
            return None
        return index_price, fillable_cap

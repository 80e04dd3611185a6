"""Parameters of `POST /api/v3/order` / `order.place`, checked in the venue's order:
parameter errors (-1100, -1102, -1111, -1115, -1116, -1117), then the symbol's filters
(-1013 `Filter failure: NAME`, filters.md), before anything reaches the matching engine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from indexmaker.venues.binance_sim.errors import ApiError, missing
from indexmaker.venues.binance_sim.exchange import Exchange
from indexmaker.venues.binance_sim.symbols import STP_MODES, SymbolSpec

_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
ZERO = Decimal(0)


@dataclass(slots=True)
class OrderRequest:
    spec: SymbolSpec
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    quote_qty: Decimal
    price: Decimal
    client_order_id: str
    resp_type: str
    stp_mode: str
    lock: Decimal = ZERO  # set when the engine locks the balance


def decimal_param(params: dict[str, str], name: str) -> Decimal | None:
    """An exact decimal parameter (never scientific notation); -1111 beyond 8 decimals."""
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _NUMBER.match(text):
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'.") from None
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise ApiError(-1111, f"Parameter '{name}' has too much precision.")
    return value


def int_param(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 20:
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(text)


def client_id_param(params: dict[str, str], name: str) -> str | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not _CLIENT_ID.match(text):
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        )
    return text


def parse_order(exchange: Exchange, params: dict[str, str], auto_id: str) -> OrderRequest:
    if not params.get("symbol"):
        raise missing("symbol")
    spec = exchange.spec(params["symbol"])
    for name in ("side", "type"):
        if not params.get(name):
            raise missing(name)
    side = params["side"].upper()
    if side not in ("BUY", "SELL"):
        raise ApiError(-1117, "Invalid side.")
    kind = params["type"].upper()
    if kind not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
        raise ApiError(-1116, "Invalid orderType.")
    tif = params.get("timeInForce", "")
    if kind == "LIMIT":
        if not tif:
            raise missing("timeInForce")
        if tif not in ("GTC", "IOC", "FOK"):
            raise ApiError(-1115, "Invalid timeInForce.")
    elif kind == "LIMIT_MAKER":
        tif = "GTC"
    elif tif:
        raise ApiError(-1106, "Parameter 'timeInForce' sent when not required.")
    else:
        tif = "GTC"
    quantity = decimal_param(params, "quantity")
    quote_qty = decimal_param(params, "quoteOrderQty")
    price = decimal_param(params, "price")
    if kind == "MARKET":
        if quantity is None and quote_qty is None:
            raise ApiError(
                -1102,
                "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
            )
        if price is not None:
            raise ApiError(-1106, "Parameter 'price' sent when not required.")
    else:
        if quantity is None:
            raise missing("quantity")
        if price is None:
            raise missing("price")
    resp_type = params.get("newOrderRespType", "FULL" if kind in ("LIMIT", "MARKET") else "ACK")
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise ApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    stp = params.get("selfTradePreventionMode", "EXPIRE_MAKER")
    if stp not in STP_MODES:
        raise ApiError(-1130, "Invalid data sent for a parameter: selfTradePreventionMode.")
    client_id = client_id_param(params, "newClientOrderId") or auto_id
    if spec.status != "TRADING":
        raise ApiError(-2010, "Market is closed.")
    reference = exchange.reference_price(spec.symbol)
    if price is not None:
        spec.check_price(price)
        if reference is not None:
            spec.check_percent_price(side, price, reference)
    if quantity is not None:
        spec.check_qty(quantity)
    if price is not None and quantity is not None:
        spec.check_notional(price * quantity)
    elif quantity is not None and reference is not None:
        spec.check_notional(reference * quantity)  # MARKET: applyMinToMarket
    elif quote_qty is not None:
        spec.check_notional(quote_qty)
    return OrderRequest(
        spec=spec,
        side=side,
        type=kind,
        time_in_force=tif,
        quantity=quantity or ZERO,
        quote_qty=quote_qty or ZERO,
        price=price or ZERO,
        client_order_id=client_id,
        resp_type=resp_type,
        stp_mode=stp,
    )

"""What an SDK request carries before it is signed: its defaults, its id, its checked body.

Kept free of aiohttp and the signing stack (about 0.3 s to import) so that the CLI can show
the defaults and check its input before it loads the SDK itself.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Final

from indexmaker.core.money import INDEX_TOKEN_DECIMALS, USDC_DECIMALS
from indexmaker.model.side import Side
from indexmaker.server.wire_values import check_amount, check_symbol, fmt_decimal

DEFAULT_URL: Final = "ws://127.0.0.1:3000/ws"
DEFAULT_CHAIN_ID: Final = 42161


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def amount_text(
    value: Decimal | int | str, field: str = "amount", decimals: int = USDC_DECIMALS
) -> str:
    """`value` as the wire's decimal string, checked: positive, at most `decimals` decimals
    (USDC's 6; a sell's index units have 18)."""
    if isinstance(value, float | bool):
        raise TypeError(f"{field}: pass a Decimal or a decimal string, not a float")
    text = fmt_decimal(value) if isinstance(value, Decimal) else str(value)
    check_amount(field, text, decimals)
    return text


def amount_decimals(side: Side | str | None) -> int:
    """Decimals an order's amount may have: a sell names index units (18), a buy USDC (6)."""
    selling = side is not None and parse_side(side) is Side.SELL
    return INDEX_TOKEN_DECIMALS if selling else USDC_DECIMALS


def parse_side(value: Side | str) -> Side:
    if isinstance(value, Side):
        return value
    try:
        return Side.parse(value)
    except ValueError:
        raise ValueError(f"side: {value!r} is not buy/b/bid/1 or sell/s/ask/a/2") from None


def request_body(
    id_field: str,
    ident: str,
    symbol: str,
    side: Side | str | None = None,
    amount: Decimal | int | str | None = None,
) -> dict[str, Any]:
    """A request's body fields, each checked as the server will check it."""
    body: dict[str, Any] = {id_field: ident, "symbol": check_symbol(symbol)}
    if side is not None:
        body["side"] = parse_side(side).value
    if amount is not None:
        body["amount"] = amount_text(amount, decimals=amount_decimals(side))
    return body

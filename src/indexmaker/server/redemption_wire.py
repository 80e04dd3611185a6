"""Wire bodies of the sell side's responses (issue 12): `IndexRedemptionFill` and
`RedemptionInvoice`, beyond the reference protocol (it has no redemption).

Field names are the core records' (core/redemption_events.py); decimals travel as positional
strings, times as RFC 3339, an instrument as its venue pair, a missing tx hash as null.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from indexmaker.core.clock import rfc3339
from indexmaker.core.ids import InstrumentId
from indexmaker.core.redemption_events import RedemptionFill, RedemptionInvoice
from indexmaker.server.wire_values import fmt_decimal

REDEMPTION_FILL: Final = "IndexRedemptionFill"
REDEMPTION_INVOICE: Final = "RedemptionInvoice"
REDEMPTION_TYPES: Final = frozenset({REDEMPTION_FILL, REDEMPTION_INVOICE})


def _wire(value: Any) -> Any:
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, InstrumentId):
        return value.pair
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_wire(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def redemption_body(
    response: RedemptionFill | RedemptionInvoice,
) -> tuple[str, str, dict[str, Any]]:
    """(msg_type, signed id, body) of a redemption response."""
    msg_type = REDEMPTION_FILL if isinstance(response, RedemptionFill) else REDEMPTION_INVOICE
    body: dict[str, Any] = _wire(response)
    for optional in ("reason", "reason_code"):
        if body.get(optional) is None:
            body.pop(optional, None)
    return msg_type, response.client_order_id, body

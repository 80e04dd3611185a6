"""Binance Spot wire shapes, decoded with msgspec straight into exact Decimals.

Field names are Binance's own (web-socket-streams.md, rest-api.md, user-data-stream.md). Depth
levels stay the venue's strings (the book parses prices exactly into integer units, which is
twice as fast as building Decimals it would only hash); other prices are parsed by msgspec into
`Decimal` without a float in between. Combined-stream frames are decoded in two steps: the
envelope keeps `data` raw, and the stream name picks the payload decoder, so each payload is
parsed exactly once.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

PriceLevel = tuple[str, str]  # (price, quantity) as sent; quantity 0 removes the level


class DepthDiff(msgspec.Struct, frozen=True, gc=False):
    """`<symbol>@depth[@100ms]` event: levels changed between update ids U and u (inclusive).

    Tuples of strings in a struct the garbage collector does not track: a diff is merged
    into the book's queue (tick_book.py) and dropped, and costs the collector nothing."""

    s: str  # symbol, upper case
    U: int  # first update id in this event
    u: int  # final update id in this event
    b: tuple[PriceLevel, ...]
    a: tuple[PriceLevel, ...]
    E: int = 0  # event time, ms


class DepthSnapshot(msgspec.Struct, frozen=True):
    """`GET /api/v3/depth` answer (also WS-API `depth` result)."""

    lastUpdateId: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]


class BookTicker(msgspec.Struct, frozen=True):
    """`<symbol>@bookTicker` event: best bid/ask, `u` = book update id it reflects."""

    u: int
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal


class StreamEnvelope(msgspec.Struct, frozen=True):
    """A combined-stream frame `{stream, data}`, or a control answer `{result, id}`."""

    stream: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    id: int | None = None
    result: msgspec.Raw = msgspec.Raw(b"")
    error: msgspec.Raw = msgspec.Raw(b"")


class DepthFrame(msgspec.Struct, frozen=True):
    """A combined-stream frame known (by its stream name) to carry a `depthUpdate`: decoded in
    one pass, where the generic envelope would take two."""

    stream: str
    data: DepthDiff


class RateLimitInfo(msgspec.Struct, frozen=True):
    """One `exchangeInfo.rateLimits[]` (or WS-API `rateLimits[]`) entry."""

    rateLimitType: str
    interval: str  # SECOND, MINUTE, HOUR, DAY
    intervalNum: int
    limit: int
    count: int | None = None  # WS-API answers: usage in the current window


class SymbolInfo(msgspec.Struct, frozen=True):
    symbol: str
    status: str  # TRADING, HALT, BREAK, CANCEL_ONLY, ...
    baseAsset: str
    quoteAsset: str
    filters: list[dict[str, object]] = []
    orderTypes: list[str] = []
    isSpotTradingAllowed: bool = True


class ExchangeInfo(msgspec.Struct, frozen=True):
    serverTime: int = 0
    rateLimits: list[RateLimitInfo] = []
    symbols: list[SymbolInfo] = []


class ErrorBody(msgspec.Struct, frozen=True):
    """`{code, msg}` of a REST error; WS-API errors add `data` (e.g. retryAfter)."""

    code: int
    msg: str = ""
    data: dict[str, object] | None = None


DEPTH_DIFF = msgspec.json.Decoder(DepthDiff)
DEPTH_FRAME = msgspec.json.Decoder(DepthFrame)
DEPTH_SNAPSHOT = msgspec.json.Decoder(DepthSnapshot)
BOOK_TICKER = msgspec.json.Decoder(BookTicker)
ENVELOPE = msgspec.json.Decoder(StreamEnvelope)
EXCHANGE_INFO = msgspec.json.Decoder(ExchangeInfo)
ERROR_BODY = msgspec.json.Decoder(ErrorBody)
JSON = msgspec.json.Decoder()
ENCODE = msgspec.json.Encoder(decimal_format="string").encode

INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}

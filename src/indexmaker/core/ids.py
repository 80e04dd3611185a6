"""Typed identifiers, so the type checker catches mix-ups."""

from __future__ import annotations

from typing import NamedTuple, NewType

Symbol = NewType("Symbol", str)  # an index ("SY100"); never an exchange pair
Venue = NewType("Venue", str)  # a trading venue, lower case: "binance", "bitget", "sim"
Pair = NewType("Pair", str)  # a venue's own name of a trading pair, e.g. "BTCUSDC"
Asset = NewType("Asset", str)  # a coin, e.g. "BTC", "USDC", "BNB" (commission assets)
ClientOrderId = NewType("ClientOrderId", str)
ClientQuoteId = NewType("ClientQuoteId", str)
Address = NewType("Address", str)  # 0x-prefixed, lower-case EVM address
ChainId = NewType("ChainId", int)
BatchId = NewType("BatchId", int)
ExchangeOrderId = NewType("ExchangeOrderId", str)  # our own client order id at the venue
VenueOrderId = NewType("VenueOrderId", str)  # the venue's id of an order (Binance orderId)
TradeId = NewType("TradeId", str)  # unique per (venue, pair) only
LotId = NewType("LotId", int)
PaymentId = NewType("PaymentId", str)
TransferId = NewType("TransferId", str)
Designation = NewType("Designation", str)  # KIND:NAME:SYMBOL, e.g. "EVM:ARBITRUM:USDC"
TxHash = NewType("TxHash", str)  # 0x-prefixed, lower-case transaction hash
WithdrawalId = NewType("WithdrawalId", str)

DEFAULT_VENUE = Venue("binance")


class InstrumentId(NamedTuple):
    """A tradable instrument: a pair on one venue (SPEC §6: never the pair alone).

    A tuple, so it hashes, compares and sorts by (venue, pair): iteration in sorted order is
    the same in every process. Printed as ``venue:pair``.
    """

    venue: Venue
    pair: Pair

    def __str__(self) -> str:
        return f"{self.venue}:{self.pair}"


def instrument(pair: str, venue: str = DEFAULT_VENUE) -> InstrumentId:
    """`InstrumentId` from plain strings (venue lower-cased)."""
    return InstrumentId(Venue(venue.lower()), Pair(pair))


# A client is one wallet on one chain.
ClientKey = tuple[ChainId, Address]


def client_key(chain_id: int, address: str) -> ClientKey:
    return (ChainId(chain_id), Address(address.lower()))

"""Typed identifiers, so the type checker catches mix-ups."""

from __future__ import annotations

from typing import NewType

Symbol = NewType("Symbol", str)  # an index ("SY100") or an exchange pair ("BTCUSDC")
ClientOrderId = NewType("ClientOrderId", str)
ClientQuoteId = NewType("ClientQuoteId", str)
Address = NewType("Address", str)  # 0x-prefixed, lower-case EVM address
ChainId = NewType("ChainId", int)
BatchId = NewType("BatchId", int)
ExchangeOrderId = NewType("ExchangeOrderId", str)  # our own client order id at the venue
TradeId = NewType("TradeId", str)
LotId = NewType("LotId", int)
PaymentId = NewType("PaymentId", str)
TransferId = NewType("TransferId", str)
Designation = NewType("Designation", str)  # KIND:NAME:SYMBOL, e.g. "EVM:ARBITRUM:USDC"

# A client is one wallet on one chain.
ClientKey = tuple[ChainId, Address]


def client_key(chain_id: int, address: str) -> ClientKey:
    return (ChainId(chain_id), Address(address.lower()))

"""What each hop of the collateral route costs now, quoted to the core (issue 11).

The core holds a lot whose amount cannot pay its route (engine/route_holds.py) but does no
I/O, so the cost reaches it as data: a `RouteCostQuoted` per hop source, journalled like every
input (a replay holds and merges exactly the same lots). A hop's cost is its bridge's fee (the
relayer's, USDC) plus the gas of its own transactions: their gas units (what our contracts use,
measured on anvil: `ACROSS_GAS`, `RELEASE_GAS`) × the chain's gas price now (the latest
block's base fee + the priority fee, as chain/tx.py offers them) × `headroom` (2: a price that
doubles between the quote and the hop is still paid) in ETH, at the ETH price gas is charged
at (chain/eth_price.py), rounded up to the micro-USDC.

Quoted at start, before the chain ports report any deposit, then every `interval_s`: a cost
that moved by more than `change` (10 %) of the last one quoted is quoted again (a steady
price adds nothing to the journal). A quote that cannot be worked out (an RPC failure) is
skipped with a warning: the core keeps the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from web3 import AsyncWeb3

from indexmaker.chain.eth_price import PriceSource
from indexmaker.chain.hops import WEI_PER_ETH_EXP
from indexmaker.core.chain_events import RouteCostQuoted
from indexmaker.core.ids import Designation
from indexmaker.core.money import (
    EXACT_CONTEXT,
    USDC_QUANTUM,
    exact_add,
    exact_multiply,
    exact_sub,
    round_up_to_step,
)
from indexmaker.core.ports import EventSink
from indexmaker.observability.logging import log_event

# Gas units of a hop's transactions with our contracts (anvil's receipts' gasUsed, rounded
# up): custody's release (81,888 to the issuer, 86,676 to the exchange's deposit address) and,
# on the Across hop, the pool's unsafeDeposit (73,537).
RELEASE_GAS = 90_000
ACROSS_GAS = RELEASE_GAS + 80_000
HEADROOM = Decimal(2)
CHANGE = Decimal("0.1")


@dataclass(frozen=True)
class RouteLeg:
    """One hop: from `source` over `bridge`, its transactions (`gas_units`) on `w3`'s chain,
    and the bridge's own fee (USDC)."""

    source: Designation
    bridge: str
    w3: AsyncWeb3[Any]
    gas_units: int
    fee: Decimal = Decimal(0)


class RouteCostQuoter:
    """Quotes every leg's cost to the core (module doc)."""

    def __init__(
        self,
        legs: list[RouteLeg],
        price: PriceSource,
        *,
        headroom: Decimal = HEADROOM,
        interval_s: float = 30.0,
        change: Decimal = CHANGE,
    ) -> None:
        self.legs, self.price = legs, price
        self.headroom, self.interval_s, self.change = headroom, interval_s, change
        self.quoted: dict[Designation, Decimal] = {}  # the last cost sent, per source
        self._task: asyncio.Task[None] | None = None

    async def start(self, sink: EventSink) -> None:
        """Quote every leg now (before any deposit is reported), then every `interval_s`."""
        await self.quote_all(sink)
        self._task = asyncio.create_task(self._run(sink))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def quote(self, leg: RouteLeg) -> RouteCostQuoted:
        """The leg's cost now (USDC, headroom included). Raises what the RPC raises."""
        block = await leg.w3.eth.get_block("latest")
        tip = int(await leg.w3.eth.max_priority_fee)
        wei_per_gas = int(block.get("baseFeePerGas", 0)) + tip
        eth_usdc = await self.price.eth_usdc()
        eth = Decimal(leg.gas_units * wei_per_gas).scaleb(-WEI_PER_ETH_EXP, context=EXACT_CONTEXT)
        gas = round_up_to_step(
            exact_multiply(exact_multiply(eth, eth_usdc), self.headroom), USDC_QUANTUM
        )
        detail = (
            f"fee {leg.fee} + {leg.gas_units} gas × {wei_per_gas} wei × {self.headroom} "
            f"at {eth_usdc} USDC/ETH"
        )
        return RouteCostQuoted(leg.source, leg.bridge, exact_add(leg.fee, gas), detail)

    async def quote_all(self, sink: EventSink) -> None:
        """Send the quotes that are new or moved by more than `change`."""
        for leg in self.legs:
            try:
                quote = await self.quote(leg)
            except Exception as error:  # the core keeps the last quote
                log_event(
                    "route_cost_unknown", logging.WARNING, source=leg.source, reason=repr(error)
                )
                continue
            last = self.quoted.get(leg.source)
            if last is not None and abs(exact_sub(quote.cost, last)) <= exact_multiply(
                last, self.change
            ):
                continue
            self.quoted[leg.source] = quote.cost
            log_event(
                "route_cost_quoted", source=leg.source, cost=str(quote.cost), how=quote.detail
            )
            await sink(quote)

    async def _run(self, sink: EventSink) -> None:
        while True:  # until stop() cancels it
            await asyncio.sleep(self.interval_s)
            await self.quote_all(sink)

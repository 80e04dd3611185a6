"""Curator updates from the settings file reach the running service (issue 12).

`[[rebalance]]` entries (settings.py RebalanceSettings) become `RebalanceIndex` inputs
(`proposal`). `serve` runs `feed_rebalances` beside the engine: each proposal goes in as any
input once every asset it concerns (the basket's, the index's holdings, the named ones) has a
mid price; the engine then cuts over and trades in rounds, and the runtime logs each
`RebalanceReport` (command_runner.py: rebalance_started / _round / _completed).

Once across restarts: the engine's rebalance ledger (active and finished rebalances, kept by
the journal and snapshots, replayed before the service starts) is read first; a proposal it
already holds for the index, under the same id, is not proposed again. The id defaults to a
digest of the index and its weights, so editing the weights is a new proposal.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.core.ids import Symbol, instrument
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceWeight
from indexmaker.observability.logging import log_event

if TYPE_CHECKING:
    from indexmaker.app.runtime import Runtime
    from indexmaker.app.settings import RebalanceSettings
    from indexmaker.engine.engine import Engine

POLL_SECONDS = 0.25  # how often an unpriced proposal looks at the books again


def proposal(entry: RebalanceSettings) -> RebalanceIndex:
    """The engine input of one `[[rebalance]]` entry (weights in the file's order)."""
    weights = tuple(RebalanceWeight(instrument(pair), w) for pair, w in entry.weights.items())
    proposal_id = entry.id or default_id(entry.index, entry.weights)
    return RebalanceIndex(Symbol(entry.index), proposal_id, weights)


def default_id(index: str, weights: dict[str, Decimal]) -> str:
    """`config-<index>-<12 hex>`: a digest of the weights, normalised (1 and 1.0 alike)."""
    terms = ",".join(f"{pair}={w.normalize()}" for pair, w in sorted(weights.items()))
    return f"config-{index}-{hashlib.sha256(terms.encode()).hexdigest()[:12]}"


def already_proposed(engine: Engine, event: RebalanceIndex) -> bool:
    """True when the engine holds a rebalance of `event.symbol` under `event.proposal_id`."""
    manager = engine.rebalance
    held = [manager.active.get(event.symbol), *manager.finished]
    return any(
        r is not None and r.proposal_id == event.proposal_id and r.target.symbol == event.symbol
        for r in held
    )


def priced(engine: Engine, event: RebalanceIndex) -> bool:
    """Every asset the proposal concerns has a mid (the core refuses a proposal without)."""
    basket = engine.baskets.get(event.symbol)
    assets = {w.instrument for w in event.weights}
    if basket is not None:
        assets.update(a.instrument for a in basket.assets)
    assets.update(engine.solver.holdings.assets_of(event.symbol))
    for asset in assets:
        prices = engine.market.prices(asset)
        if prices is None or prices.mid is None:
            return False
    return True


async def feed_rebalances(runtime: Runtime, proposals: tuple[RebalanceIndex, ...]) -> None:
    """Put each proposal in once it is priced, unless the engine already holds it. Runs
    until all are in (a service task, cancelled at stop); reads the engine between steps."""
    waiting = list(proposals)
    while waiting:
        await runtime.quiet()
        for event in list(waiting):
            if already_proposed(runtime.engine, event):
                waiting.remove(event)
                log_event(
                    "rebalance_already_proposed", symbol=event.symbol, proposal=event.proposal_id
                )
            elif priced(runtime.engine, event):
                waiting.remove(event)
                await runtime.put(event)
                log_event(
                    "rebalance_proposed",
                    logging.INFO,
                    symbol=event.symbol,
                    proposal=event.proposal_id,
                    assets=len(event.weights),
                )
        if waiting:
            await asyncio.sleep(POLL_SECONDS)

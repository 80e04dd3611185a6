"""The core acting on what the venue says about itself, through serve's runtime and the
in-process simulated venue: an invalid book keeps its instrument out of new batches until a
fresh snapshot, and a 429's retry-after holds every placement back until it has passed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from indexmaker.core.events import (
    Command,
    IndexOrderFill,
    PlaceExchangeOrder,
)
from indexmaker.sim.venue import VenueFaults

from .test_runtime_faults import AAA, BBB, Rig, running  # noqa: F401 (the fixture)


async def test_an_invalid_book_keeps_its_instrument_out_of_batches_until_resynced(
    running: Callable[..., Rig],  # noqa: F811
) -> None:
    rig = running()
    await rig.runtime.start()
    await rig.venue.invalidate_book(AAA, "depth stream dropped")
    await rig.order()
    # The collateral is ready, then many ticks (10 ms each) pass: no batch can price IDX.
    await rig.until(lambda: any(isinstance(m, IndexOrderFill) for _, m in rig.sent))
    await asyncio.sleep(0.15)
    assert not rig.of(PlaceExchangeOrder) and not rig.invoices()
    await rig.venue.resync_book(AAA)
    await rig.until(lambda: bool(rig.invoices()))
    assert {p.instrument for p in rig.of(PlaceExchangeOrder)} == {AAA, BBB}
    assert rig.invoices()[0].client_order_id == "o-1"


async def test_a_rate_limit_retry_after_holds_placements_back_until_it_passed(
    running: Callable[..., Rig],  # noqa: F811
) -> None:
    wait = timedelta(milliseconds=300)
    rig = running(venue_faults=VenueFaults(rate_limited=1, retry_after=wait))
    loop = asyncio.get_running_loop()
    stamped: list[tuple[float, Command]] = []
    rig.runtime.observers.append(lambda command: stamped.append((loop.time(), command)))
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.invoices()))
    placed = [(t, c) for t, c in stamped if isinstance(c, PlaceExchangeOrder)]
    first = placed[0][1].batch_id
    refused_at = max(t for t, c in placed if c.batch_id == first)
    later = [t for t, c in placed if c.batch_id != first]
    # One order of the first batch was refused (429): what it did not buy is bought by a
    # later batch, whose orders leave only once the venue's retry-after has passed.
    assert later, "the refused order's part was never bought again"
    assert min(later) >= refused_at + wait.total_seconds() - 0.02
    (alert,) = rig.alerts("rate_limited")
    assert "0:00:00.300000" in alert.message and "429" in alert.message

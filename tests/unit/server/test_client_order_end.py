"""The SDK's wait for an order's end (server/client_tracking.py) also ends on the server's
final report of an order it ended with nothing to mint or redeem (SPEC §3: a buy used up
reducing the client's sell gets an unsolicited CancelIndexOrder `canceled`, reason "done: …"),
so `order --wait` does not wait for an invoice that never comes (issue 12 review)."""

from __future__ import annotations

import asyncio

import pytest

from indexmaker.server.client_events import CancelResponse, OrderEnded, OrderResponse
from indexmaker.server.client_tracking import ReplyTracker
from indexmaker.server.redemption_wire import REDEMPTION_INVOICE
from indexmaker.server.wire_values import CANCEL_INDEX_ORDER, MINT_INVOICE

DONE = "done: nothing left to buy (reduced the redemption by 1.259445843828715365 index units)"


async def _ended(tracker: ReplyTracker, kind: str, cid: str) -> OrderEnded:
    waiting = asyncio.ensure_future(tracker.wait_end(kind, cid, timeout=5))
    await asyncio.sleep(0)  # the wait is registered before the report comes
    tracker.route(CancelResponse(client_order_id=cid, status="canceled", reason=DONE))
    with pytest.raises(OrderEnded) as raised:
        await waiting
    return raised.value


@pytest.mark.parametrize("kind", [MINT_INVOICE, REDEMPTION_INVOICE])
async def test_a_done_report_ends_the_wait_with_its_reason(kind: str) -> None:
    ended = await _ended(ReplyTracker(), kind, "b3")
    assert ended.client_order_id == "b3" and ended.reason == DONE
    assert str(ended) == f"order b3 ended: {DONE}"


async def test_a_done_report_that_came_first_ends_a_later_wait_at_once() -> None:
    tracker = ReplyTracker()
    tracker.route(CancelResponse(client_order_id="b4", status="canceled", reason=DONE))
    with pytest.raises(OrderEnded):
        await tracker.wait_end(MINT_INVOICE, "b4", timeout=0)


async def test_a_cancel_the_client_asked_for_or_a_partial_one_does_not_end_the_wait() -> None:
    tracker = ReplyTracker()
    asked = tracker.waiter(CANCEL_INDEX_ORDER, "b5")  # this session's own cancel request
    tracker.route(CancelResponse(client_order_id="b5", status="canceled", reason=DONE))
    assert asked.done()  # the answer went to the request ...
    # ... and a cancel of part of an order from elsewhere (no "done: ") is no end either
    tracker.route(CancelResponse(client_order_id="b6", status="canceled", reason=None))
    tracker.route(OrderResponse(client_order_id="b6", status="new"))
    for cid in ("b5", "b6"):
        with pytest.raises(TimeoutError):
            await tracker.wait_end(MINT_INVOICE, cid, timeout=0.01)

"""app/handoff.py: while core work runs in a worker thread, its checkpoints hand the event
loop a full round; a loop that cannot answer never stalls the work (issue 6, loop lag)."""

from __future__ import annotations

import asyncio
import threading

from indexmaker.app.handoff import CHECK_EVERY, LoopHandoff
from indexmaker.core.pacing import checkpoint, paced


async def test_a_handoff_returns_only_after_the_loop_ran_what_was_ready() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop, slice_s=0.0)  # hand over at every CHECK_EVERY-th checkpoint
    ran: list[int] = []
    missed: list[int] = []

    def work() -> None:
        with paced(handoff):
            for round_ in range(5):
                for _ in range(CHECK_EVERY - 1):
                    checkpoint()  # not yet due: no handoff, no wait
                # Something for the loop (a FIX frame's callback, say), then a checkpoint.
                loop.call_soon_threadsafe(ran.append, round_)
                checkpoint()
                if round_ not in ran:
                    missed.append(round_)

    await asyncio.to_thread(work)
    assert handoff.handoffs == 5
    assert missed == [] and ran == [0, 1, 2, 3, 4]


def test_a_loop_that_never_answers_is_given_up_once_not_at_every_checkpoint() -> None:
    loop = asyncio.new_event_loop()  # never run: no round will ever come
    try:
        handoff = LoopHandoff(loop, slice_s=0.0, max_wait_s=0.01)
        waited: list[bool] = []

        def work() -> None:
            with paced(handoff):
                for _ in range(CHECK_EVERY * 50):
                    checkpoint()
            waited.append(True)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(timeout=5)  # 50 waits of 10 ms would still finish; one is what we expect
        assert waited == [True] and handoff.handoffs == 0 and handoff.gave_up
        # Given up after the first wait: further due checkpoints return at once.
        with paced(handoff):
            for _ in range(CHECK_EVERY * 3):
                checkpoint()
        assert handoff.handoffs == 0
    finally:
        loop.close()

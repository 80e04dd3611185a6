"""The pause the runtime installs at the core's checkpoints while a tick runs in the engine's
worker thread (core/pacing.py): it keeps the event loop's turn bounded.

Both threads share the GIL, and CPython takes it from a busy thread only every switch
interval (5 ms): a tick in the worker left the loop waiting up to two intervals at a time
(p99 loop lag 10.4 ms on a quiet machine). Instead, once `slice` has passed since the loop
last had a turn, the worker hands over: it asks the loop to signal it after one full round
(the I/O and timers ready by then) and waits for that signal, holding no GIL. A FIX frame
waits at most about one slice plus one loop round, whatever the tick's length.
"""

from __future__ import annotations

import asyncio
import threading
import time

CHECK_EVERY = 16  # checkpoints between clock reads: a checkpoint costs well under 1 µs


class LoopHandoff:
    """Callable pause: hand the GIL to `loop` once every `slice_s` seconds of work, waiting
    at most `max_wait_s` for its round (a stopped loop never stalls the worker)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, slice_s: float, max_wait_s: float = 0.5
    ) -> None:
        self._loop = loop
        self._slice = slice_s
        self._max_wait = max_wait_s
        self._until = time.perf_counter() + slice_s
        self._calls = 0
        self.handoffs = 0
        self.gave_up = False

    def __call__(self) -> None:
        self._calls += 1
        if self._calls % CHECK_EVERY or time.perf_counter() < self._until:
            return
        done = threading.Event()
        try:
            # call_soon from within the loop: the signal comes after the round that polls
            # the I/O and timers due now, not before it.
            self._loop.call_soon_threadsafe(self._loop.call_soon, done.set)
        except RuntimeError:  # the loop is closed: nobody to hand over to
            self._until = float("inf")
            return
        if not done.wait(self._max_wait):
            # The loop had no round for us (it is shutting down, or blocked waiting for this
            # very thread): stop handing over rather than wait at every checkpoint.
            self._until = float("inf")
            self.gave_up = True
            return
        self.handoffs += 1
        self._until = time.perf_counter() + self._slice

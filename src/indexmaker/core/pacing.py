"""Pacing of long core work: the points where it may let others run.

A 10,000-order tick walks every order several times. It calls `checkpoint()` between orders;
by default that does nothing, so the core stays synchronous, deterministic and free of I/O.
The runtime runs ticks in a worker thread and installs a pause there for that thread only
(`paced`): the pause may block the thread for a moment (app/runtime.py hands the GIL to the
event loop so FIX I/O keeps flowing). A pause never touches the core's state, so where and
whether it happens changes nothing but when the work runs (issue 6: loop lag during a tick).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Pause = Callable[[], None]


class _Local(threading.local):
    pause: Pause | None = None  # a class default: no attribute miss on the hot path


_local = _Local()


def checkpoint() -> None:
    """A point between two units of long work; runs this thread's pause, if one is set."""
    pause = _local.pause
    if pause is not None:
        pause()


@contextmanager
def paced(pause: Pause) -> Iterator[None]:
    """Run `pause` at every checkpoint of the work done inside, in this thread only."""
    previous = _local.pause
    _local.pause = pause
    try:
        yield
    finally:
        _local.pause = previous

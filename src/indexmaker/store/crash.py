"""Crash points for the crash harness: the process kills itself with SIGKILL at a chosen spot.

`INDEXMAKER_CRASH_AT="<point>:<n>"` (e.g. `commit:7`, `effect:12`) makes the n-th hit of that
point end the process at once, exactly as a `kill -9` or a power cut would: no handler, no
flush. Unset (production), `hit` is one attribute test. Points: `commit` (right after the
n-th durable commit), `before_commit` (with the n-th group buffered, not yet durable),
`effect` (right after the n-th effect left the process, before it is marked done).
"""

from __future__ import annotations

import os
import signal

ENV = "INDEXMAKER_CRASH_AT"


class CrashPoints:
    def __init__(self, spec: str | None) -> None:
        self._point: str | None = None
        self._at = 0
        self._count = 0
        if spec:
            point, _, n = spec.partition(":")
            if not n.isdigit() or int(n) < 1:
                raise ValueError(f"{ENV}: expected <point>:<n> with n >= 1, got {spec!r}")
            self._point, self._at = point, int(n)

    @classmethod
    def from_env(cls) -> CrashPoints:
        return cls(os.environ.get(ENV))

    def hit(self, point: str) -> None:
        if point != self._point:
            return
        self._count += 1
        if self._count == self._at:
            os.kill(os.getpid(), signal.SIGKILL)


NO_CRASH = CrashPoints(None)

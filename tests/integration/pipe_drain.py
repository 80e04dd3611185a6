"""Keep reading a child's piped output once a test has the lines it waited for.

A pipe nobody reads fills (64 KiB on Linux) and blocks the child's next log write: a serve
logging on after its start then stalls its event loop, and cannot even stop on SIGTERM (the
intermittent "serve did not exit" hangs of the suite under load).
"""

from __future__ import annotations

import threading
from typing import IO


def drain(stream: IO[str], into: list[str]) -> threading.Thread:
    """Read `stream` to its end on a daemon thread, appending each line to `into`."""

    def read() -> None:
        for line in stream:
            into.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread

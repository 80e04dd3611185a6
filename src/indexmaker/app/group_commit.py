"""Durable before effect for the runtime (issue 10; docs/decisions.md, "Commits in the
store's writer thread"): what the engine decided leaves the process only after the commit
that holds it, and the commits themselves never run on the event loop.

After each group of inputs the runtime hands over what the group decided. When an effect
is among it (a client reply, an exchange order, a transfer, a mint...) a commit starts in
the store's writer thread and the engine task waits for it, then carries everything out
in the order decided; meanwhile the event loop serves FIX and market data, and inputs that
arrive ride on the next commit (group commit). Without an effect (market data, alerts) a
commit starts at most every `commit_interval` and nobody waits for it: never an fsync per
diff, nor one inside an engine step. A failed commit lets nothing out; the next one, tried
after `commit_interval`, writes the failed group again first (store/sql.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from indexmaker.core.events import Command
from indexmaker.core.journal import OutboxItem
from indexmaker.core.ports import StorePort
from indexmaker.observability.logging import log_event

Decided = list[tuple[Command, OutboxItem | None]]  # (command, its outbox item if an effect)


class GroupCommit:
    def __init__(
        self,
        store: StorePort,
        commit_interval: float,
        carry_out: Callable[[Decided], Awaitable[None]],
        on_commit: Callable[[], None],
    ) -> None:
        """`commit_interval`: seconds between commits of market data alone; `carry_out`:
        carries decided commands out, in order; `on_commit`: called as each commit starts
        (the runtime's snapshot cadence)."""
        self.store = store
        self.commit_interval = commit_interval
        self._carry_out = carry_out
        self._on_commit = on_commit
        self.decided: Decided = []  # decided, not yet carried out, in no commit yet
        # The commit in flight and what it holds: only that may leave once it is durable
        # (what is decided meanwhile is in the store's next group, not in this one).
        self._committing: tuple[asyncio.Future[None], Decided] | None = None
        self._last_commit = float("-inf")  # loop time the last commit started

    @property
    def waiting(self) -> bool:
        """Something decided is not carried out yet (in a commit in flight or in none)."""
        return bool(self.decided) or (self._committing is not None and bool(self._committing[1]))

    def _effects_wait(self) -> bool:
        return any(item is not None for _, item in self.decided)

    async def after_group(self, decided: Decided) -> None:
        """What a group of inputs decided: carried out now or after its commit."""
        self.decided.extend(decided)
        effects = self._effects_wait()
        committing = self._committing
        if committing is not None and (effects or committing[0].done()):
            await self._release()
        if effects:
            if self._committing is None and self._since_commit() >= 0:
                self._start()
                await self._release()
            return  # (after a failed commit: tried again after commit_interval)
        decided, self.decided = self.decided, []
        await self._carry_out(decided)  # alerts, batch events: no commit needed
        ready = self._committing is None and self._since_commit() >= self.commit_interval
        if ready and self.store.dirty:
            self._start()

    async def when_idle(self) -> bool:
        """No input waits: try again the commit effects wait for after a failed one. False
        when there is nothing to do but wait for input."""
        if not self._effects_wait():
            return False
        if self._committing is None:
            wait = -self._since_commit()
            if wait > 0:
                await asyncio.sleep(wait)
            self._start()
        await self._release()
        return True

    def _since_commit(self) -> float:
        """Seconds since the last commit started (negative: a failed one's retry waits)."""
        return asyncio.get_running_loop().time() - self._last_commit

    def _start(self) -> None:
        future = asyncio.wrap_future(self.store.commit_later())
        self._committing, self.decided = (future, self.decided), []
        self._last_commit = asyncio.get_running_loop().time()
        self._on_commit()

    async def _release(self) -> None:
        """Wait for the commit in flight, then carry out what waited for it; after a
        failure nothing leaves until the next commit."""
        assert self._committing is not None
        future, held = self._committing
        try:
            # shield: a stopping service never cancels a transaction half way.
            await asyncio.shield(future)
        except Exception as error:
            log_event("store_commit_failed", logging.ERROR, error=error)
            self.decided = held + self.decided  # the next commit writes them again first
            self._last_commit = asyncio.get_running_loop().time() + self.commit_interval
            return
        finally:
            self._committing = None
        await self._carry_out(held)

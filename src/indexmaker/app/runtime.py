"""The live service loop: one task owns the engine; adapters reach it only through ports.

Inputs wait in one bounded queue (app/input_queue.py). Venue and chain adapters push into it
through `put` (they wait when it is full: back-pressure); client requests arrive through
`submit`, and when the queue is full they are refused at once with a reason instead of
piling up. Ticks are coalesced (at most one waits). A tick may run for tens of milliseconds
with 10,000 orders, so it runs in a worker thread: the core stays synchronous and
deterministic (one owner, one step at a time), while the event loop keeps reading and
writing FIX frames.

Every command is carried out in its own task under a timeout (app/command_runner.py), and
whatever goes wrong comes back as an input the core understands. A watchdog
restarts the engine task should it ever end, and `health()` says when the loop lags, the
queue fills, a step is stuck or a book is stale (app/step_watch.py). Settings, the wall
clock and the commands that are effects: app/runtime_config.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from indexmaker.app.command_runner import CommandRunner, Deliver
from indexmaker.app.group_commit import Decided, GroupCommit
from indexmaker.app.handoff import LoopHandoff
from indexmaker.app.health import HealthReport, LoopLagMonitor
from indexmaker.app.input_queue import BUSY as BUSY
from indexmaker.app.input_queue import InputQueue
from indexmaker.app.recovery import RecoveryPlan
from indexmaker.app.runtime_config import EFFECTS as EFFECTS
from indexmaker.app.runtime_config import RuntimeLimits as RuntimeLimits
from indexmaker.app.runtime_config import SystemClock as SystemClock
from indexmaker.app.step_watch import StepWatch
from indexmaker.core.events import (
    BatchEvent,
    ClientResponse,
    Command,
    EngineInput,
    Tick,
)
from indexmaker.core.ids import ClientKey
from indexmaker.core.journal import OutboxItem
from indexmaker.core.pacing import paced
from indexmaker.core.ports import BridgePort, ChainPort, StorePort, VenuePort
from indexmaker.engine.engine import Engine
from indexmaker.observability.logging import log_event
from indexmaker.observability.metrics import ServiceMetrics
from indexmaker.store.crash import NO_CRASH, CrashPoints

# Inputs handled per group commit at most: bounds the latency a group adds to its first.
MAX_GROUP = 256
CARRY_OUT_SLICE = 64  # commands carried out between two turns of the event loop


class Runtime:
    def __init__(
        self,
        engine: Engine,
        venue: VenuePort,
        chain: ChainPort,
        bridges: Mapping[str, BridgePort] | None = None,
        limits: RuntimeLimits | None = None,
        metrics: ServiceMetrics | None = None,
        store: StorePort | None = None,
        commit_interval: timedelta = timedelta(milliseconds=100),
        crash: CrashPoints = NO_CRASH,
        snapshot_every: int = 0,
        fingerprint: str = "",
    ) -> None:
        self.engine = engine
        self.venue = venue
        self.chain = chain
        self.bridges = dict(bridges or {})
        self.limits = limits or RuntimeLimits()
        self.metrics = metrics
        self.deliver: Deliver | None = None
        # The outbox key of the effect being carried out right now (None: not an effect of
        # the store's outbox): the FIX server numbers durable messages by it.
        self.effect_key: str | None = None
        # When set it is also the engine's journal: `engine.handle` buffers each input, and
        # the effects it causes are committed with it before they leave (durable before effect).
        self.store = store
        self._crash = crash
        self._commits = (
            None
            if store is None
            else GroupCommit(
                store,
                commit_interval.total_seconds(),
                self._carry_out_all,
                self._after_commit_started,
            )
        )
        # A snapshot of the engine every `snapshot_every` journal entries (0: never).
        self.snapshot_every = snapshot_every
        self.fingerprint = fingerprint
        self._snapshot_seq = store.last_seq if store is not None else 0
        self.observers: list[Callable[[Command], None]] = []
        self.lag = LoopLagMonitor()
        self.engine_restarts = 0
        self._queue = InputQueue(self.limits.queue_size, self._deliver)
        # Inputs handled (journalled, with a store) so far, in queue order: an adapter that
        # must not record progress ahead of the journal waits on them (`inputs_put`).
        self.inputs_handled = 0
        self._step_started: float | None = None
        self._in_worker: asyncio.Future[list[Command]] | None = None
        self.watch = StepWatch(engine, venue, self.limits.health, metrics)
        self._engine_task: asyncio.Task[None] | None = None
        self._services: list[asyncio.Task[None]] = []
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self.commands = CommandRunner(
            venue, chain, self.bridges, self.limits, self.put, self._deliver, metrics
        )

    # ------------------------------------------------------------------ inputs

    @property
    def inputs_put(self) -> int:
        """Inputs queued so far, in queue order."""
        return self._queue.put_count

    async def put(self, event: EngineInput) -> None:
        """An adapter's input; waits while the queue is full (back-pressure)."""
        await self._queue.put(event)

    def submit(self, event: EngineInput) -> None:
        """A client request (or any input from a caller that cannot wait); see `offer`."""
        self.offer(event)

    def offer(self, event: EngineInput) -> bool:
        """Queue `event` now. When the queue is full a client request is refused to its
        client with the reason, anything else is dropped and logged; False then."""
        return self._queue.offer(event)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, plan: RecoveryPlan | None = None) -> None:
        """Start the adapters and loops; with a recovery plan (app/recovery.py), first queue
        its inputs (reconciliation, before the first tick), carry out again what must be, and
        hand the undelivered client messages to the gateway."""
        await self.venue.start(self.put)
        await self.chain.start(self.put)
        for bridge in self.bridges.values():
            await bridge.start(self.put)
        assets = sorted({a.instrument for b in self.engine.baskets.values() for a in b.assets})
        await self.venue.subscribe_books(assets)
        if plan is not None:
            for message in plan.messages:
                self._deliver(message.client, message.message)
            for event in plan.inputs:
                await self.put(event)
            for command in plan.redo:
                self._carry_out(command)
            if self.store is not None:
                self.store.commit()
        self._engine_task = asyncio.create_task(self._engine_loop(), name="engine")
        self._services = [
            asyncio.create_task(self._ticker(), name="ticker"),
            asyncio.create_task(self._watchdog(), name="watchdog"),
        ]
        self.lag.start()

    async def stop(self) -> None:
        for task in self._services:
            task.cancel()
        if self._engine_task is not None:
            self._engine_task.cancel()
        await asyncio.gather(*self._services, return_exceptions=True)
        await self.commands.stop()
        if self._engine_task is not None:
            await asyncio.gather(self._engine_task, return_exceptions=True)
        await self.lag.stop()
        await self.venue.stop()
        await self.chain.stop()
        for bridge in self.bridges.values():
            await bridge.stop()
        self._worker.shutdown(wait=True)

    async def drain(self, timeout: timedelta = timedelta(seconds=5)) -> bool:
        """Wait until every queued input has been handled and what it decided carried out;
        False if `timeout` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout.total_seconds()
        while (
            not self._queue.empty()
            or self._step_started is not None
            or (self._commits is not None and self._commits.waiting)
        ):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.001)
        return True

    async def handled_through(self, position: int, poll_s: float = 0.01) -> bool:
        """True once the first `position` inputs ever queued have been handled (with a
        store: journalled, so whatever is written to the store after this commits with or
        after them); False if the engine stopped first (`stop`: nothing more will be handled,
        so a caller must not wait on, e.g. a chain port stopping after it). Waits as long as
        the engine takes to reach them."""
        while self.inputs_handled < position:
            if self._engine_task is not None and self._engine_task.done():
                return False
            await asyncio.sleep(poll_s)
        return True

    def books_seen(self) -> int:
        """How many instruments' books have reached the engine since start."""
        return self.watch.books_seen()

    @property
    def book_events(self) -> int:
        """Book snapshots and updates the engine applied (demo figures)."""
        return self.watch.book_events

    async def quiet(self) -> None:
        """Return at a moment no engine step runs in the worker thread. A reader of the
        engine's state (the query API) reads it synchronously right after, on the event loop,
        so it never sees a tick half done (the engine itself only changes on the loop or in
        that thread)."""
        while (running := self._in_worker) is not None:
            await asyncio.wait((running,))

    def health(self) -> HealthReport:
        now = asyncio.get_running_loop().time()
        step = 0.0 if self._step_started is None else now - self._step_started
        alive = self._engine_task is not None and not self._engine_task.done()
        return self.watch.report(
            now,
            engine_alive=alive,
            step_seconds=step,
            loop_lag=self.lag.worst(),
            queue_depth=self._queue.qsize(),
            queue_capacity=self.limits.queue_size,
        )

    # ------------------------------------------------------------------ the engine task

    async def _engine_loop(self) -> None:
        while True:
            commits = self._commits
            if commits is not None and self._queue.empty() and await commits.when_idle():
                continue
            group = [await self._queue.get()]
            while len(group) < MAX_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
            decided: Decided = []
            for event in group:
                decided.extend(await self._step(event))
                self.inputs_handled += 1
            if commits is None:
                await self._carry_out_all(decided)
            else:
                await commits.after_group(decided)  # durable before effect

    async def _carry_out_all(self, decided: Decided) -> None:
        for n, (command, item) in enumerate(decided, 1):
            if n % CARRY_OUT_SLICE == 0:
                # A 10,000-order tick gives thousands of commands: let FIX I/O in between
                # (issue 6 loop lag). The engine does not change while they are carried out.
                await asyncio.sleep(0)
            self.effect_key = None if item is None else item.key
            self._carry_out(command)
            self.effect_key = None
            if item is not None and self.store is not None:
                self._crash.hit("effect", item.key)
                self.store.mark_done((item.key,))

    async def _step(self, event: EngineInput) -> list[tuple[Command, OutboxItem | None]]:
        loop = asyncio.get_running_loop()
        started = self._step_started = loop.time()
        try:
            if isinstance(event, Tick):
                self._queue.took_tick()
                event = Tick(self.engine.clock.now())  # the time it is handled
            if isinstance(event, Tick) and self.limits.offload_ticks:
                self._in_worker = loop.run_in_executor(self._worker, self._paced, event, loop)
                try:
                    commands = await self._in_worker
                finally:
                    self._in_worker = None
            else:
                commands = self.engine.handle(event)
        except Exception as error:  # the engine contains its own; this is the last guard
            log_event("engine_error", logging.ERROR, input=type(event).__name__, error=error)
            return []
        finally:
            self._step_started = None
        self.watch.after_step(event, loop.time() - started, self._queue.qsize(), loop.time())
        store = self.store
        if store is None:
            return [(command, None) for command in commands]
        effects = [c for c in commands if isinstance(c, EFFECTS)]
        keyed = iter(store.add_effects(store.last_seq, effects) if effects else ())
        notices = [c for c in commands if isinstance(c, BatchEvent)]
        if notices:  # the query API's batch history
            store.add_batch_events(store.last_seq, notices)
        return [(c, next(keyed) if isinstance(c, EFFECTS) else None) for c in commands]

    def _paced(self, event: EngineInput, loop: asyncio.AbstractEventLoop) -> list[Command]:
        """`engine.handle` in the worker thread, handing the loop a turn every tick_slice."""
        tick_slice = self.limits.tick_slice
        if tick_slice is None:
            return self.engine.handle(event)
        with paced(LoopHandoff(loop, tick_slice.total_seconds())):
            return self.engine.handle(event)

    def _after_commit_started(self) -> None:
        store = self.store
        assert store is not None
        if self.snapshot_every and store.last_seq - self._snapshot_seq >= self.snapshot_every:
            self.snapshot()  # committed with the next group

    def snapshot(self) -> None:
        """Buffer a snapshot of the engine as of the journal's end (the engine task only)."""
        store = self.store
        if store is None:
            return
        state = self.engine.snapshot()  # may journal books first: read last_seq after it
        store.save_snapshot(store.last_seq, self.fingerprint, state)
        self._snapshot_seq = store.last_seq

    async def _ticker(self) -> None:
        period = self.engine.setup.config.tick.total_seconds()
        while True:
            await asyncio.sleep(period)
            self._queue.offer_tick(self.engine.clock.now())

    async def _watchdog(self) -> None:
        period = self.limits.watchdog_period.total_seconds()
        stuck = self.limits.health.max_step.total_seconds()
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            task = self._engine_task
            if task is not None and task.done():
                reason = "cancelled" if task.cancelled() else repr(task.exception())
                self.engine_restarts += 1
                log_event("engine_restarted", logging.ERROR, reason=reason)
                # The group the dead task held is gone: count it as handled (not waited on).
                self.inputs_handled = self.inputs_put - self._queue.qsize()
                self._engine_task = asyncio.create_task(self._engine_loop(), name="engine")
            started = self._step_started
            if started is not None and loop.time() - started > stuck:
                log_event("engine_stuck", logging.ERROR, seconds=round(loop.time() - started, 1))

    # ------------------------------------------------------------------ commands

    def _carry_out(self, command: Command) -> None:
        for observer in self.observers:
            try:
                observer(command)
            except Exception as error:  # an observer never stops the commands
                log_event("observer_error", logging.ERROR, error=error)
        self.commands.carry_out(command)

    def _deliver(self, client: ClientKey, message: ClientResponse) -> None:
        if self.deliver is None:
            return
        try:
            self.deliver(client, message)
        except Exception as error:  # one client's dead socket never stops the engine
            log_event("deliver_failed", logging.WARNING, client=client[1], error=error)
            if self.metrics is not None:
                self.metrics.command_failed("deliver")

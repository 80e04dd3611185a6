"""core/pacing.py: checkpoints run a pause only where one is installed, and a pause changes
nothing the core decides (issue 6: a long tick handing the event loop its turns)."""

from __future__ import annotations

import threading
from datetime import timedelta

from indexmaker.core.events import Command
from indexmaker.core.pacing import checkpoint, paced
from indexmaker.model.side import Side

from ..engine.test_engine import ALICE, BOB, D, fingerprint, order, world
from ..engine.test_redemptions import order as index_order
from ..engine.test_redemptions import world as holders


def test_a_pause_runs_in_its_own_thread_only_and_nesting_restores_it() -> None:
    calls: list[str] = []
    checkpoint()  # nothing installed: nothing happens
    seen_elsewhere: list[int] = []

    def other_thread() -> None:
        before = len(calls)
        checkpoint()
        seen_elsewhere.append(len(calls) - before)

    with paced(lambda: calls.append("outer")):
        checkpoint()
        with paced(lambda: calls.append("inner")):
            checkpoint()
        checkpoint()
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    checkpoint()
    assert calls == ["outer", "inner", "outer"]
    assert seen_elsewhere == [0]


def run(pause: bool) -> tuple[list[Command], str, int]:
    w = world()
    recorded: list[Command] = []
    w.on_command = recorded.append
    pauses = 0

    def count() -> None:
        nonlocal pauses
        pauses += 1

    w.deposit(ALICE, D("5000"))
    w.deposit(BOB, D("3000"))
    for n in range(40):
        w.submit(order(ALICE if n % 2 else BOB, f"o{n}", "150"))
    if pause:
        with paced(count):
            w.advance(timedelta(seconds=30))
    else:
        w.advance(timedelta(seconds=30))
    return recorded, fingerprint(w.engine), pauses


def test_pausing_at_every_checkpoint_changes_no_decision() -> None:
    plain, plain_state, none = run(pause=False)
    paused, paused_state, pauses = run(pause=True)
    assert none == 0 and pauses >= 40  # at least once per order of the batch
    assert repr(paused) == repr(plain) and paused_state == plain_state


def run_sell(pause: bool) -> tuple[list[Command], str, int]:
    """alice and bob each redeem their 25 IDX in 10 orders: one sell tick forms the batch,
    the next ones allocate its fills and burn."""
    state = holders()
    recorded: list[Command] = []
    state.world.on_command = recorded.append
    pauses = 0

    def count() -> None:
        nonlocal pauses
        pauses += 1

    for n in range(20):
        name = "alice" if n % 2 else "bob"
        state.world.submit(index_order(name, state, f"S{n}", Side.SELL, "2.5"))
    if pause:
        with paced(count):
            state.world.advance(timedelta(seconds=10))
    else:
        state.world.advance(timedelta(seconds=10))
    engine = state.world.engine
    return recorded, fingerprint(engine) + repr(engine.redemptions.open_redemptions()), pauses


def test_pausing_at_every_checkpoint_of_a_sell_tick_changes_no_decision() -> None:
    plain, plain_state, none = run_sell(pause=False)
    paused, paused_state, pauses = run_sell(pause=True)
    assert none == 0 and pauses >= 20 * 3  # candidates, engagement, allocation: each per order
    assert any(getattr(c, "side", None) is Side.SELL for c in plain)  # a sell batch was placed
    assert repr(paused) == repr(plain) and paused_state == plain_state

"""Durable server_seq numbers (store/fix_outbox.py): the same rank gives the same number in
every life; numbers between engine messages stay below the next one; a restart resumes after
the last engine message ever committed."""

from __future__ import annotations

from indexmaker.store.fix_outbox import STEP, DurableNumbers


def test_numbers_follow_the_rank_and_survive_a_restart() -> None:
    live = DurableNumbers(base=10**15, messages=0)
    given = [live.next_effect() for _ in range(3)]
    assert given == [10**15 + STEP, 10**15 + 2 * STEP, 10**15 + 3 * STEP]
    restarted = DurableNumbers(base=10**15, messages=3)  # three rows found at start
    assert [restarted.of(rank) for rank in range(3)] == given
    assert restarted.last == given[-1] and restarted.next_effect() > given[-1]


def test_numbers_between_engine_messages_never_reach_the_next_one() -> None:
    numbers = DurableNumbers(base=0, messages=1)  # last engine message: STEP
    last = numbers.last
    between = []
    for _ in range(STEP + 5):  # more than fit: capped below the next engine message
        last = numbers.between(last)
        between.append(last)
    assert between[0] == STEP + 1 and max(between) == 2 * STEP - 1
    assert between == sorted(between)
    assert numbers.next_effect() == 2 * STEP > max(between)

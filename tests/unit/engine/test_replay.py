"""Exact replay (issue 6): a journal replayed in fresh processes under different hash seeds
gives the same command stream, byte for byte, as the run that wrote it — invoices included —
and the run itself is the same in every process."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from indexmaker.core.clock import ManualClock
from indexmaker.core.codec import encode, encode_entry
from indexmaker.core.events import MintInvoice, RebalanceReport, RedemptionInvoice, SendToClient
from indexmaker.engine.engine import Engine
from indexmaker.sim.replay_check import lifecycle, replay, setup

SEEDS = ("0", "1", "2", "4242")


def _run(args: list[str], seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-m", "indexmaker.sim.replay_check", *args],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture(scope="module")
def recorded() -> tuple[bytes, bytes]:
    entries, commands = lifecycle()
    invoices = [
        c for c in commands if isinstance(c, SendToClient) and isinstance(c.message, MintInvoice)
    ]
    assert len(invoices) == 13  # every order of the lifecycle minted and invoiced
    redeemed = [
        c
        for c in commands
        if isinstance(c, SendToClient) and isinstance(c.message, RedemptionInvoice)
    ]
    assert [r.message.redeemed_quantity for r in redeemed] == [D("1.5"), D(2)]
    reports = [c for c in commands if isinstance(c, RebalanceReport)]
    assert [r.kind for r in reports] == ["started", "round", "round", "completed"]
    assert invoices[-1].message.basket_version == 2  # bought after the cut-over
    journal = b"".join(encode_entry(e) + b"\n" for e in entries)
    stream = b"".join(encode(c) + b"\n" for c in commands)
    return journal, stream


def test_replay_in_process_reproduces_every_command_and_journals_nothing() -> None:
    entries, commands = lifecycle()
    clock = ManualClock()  # never advanced: every time comes from the journal
    engine = Engine(setup(), clock)
    replayed = engine.replay(entries)
    assert [encode(c) for c in replayed] == [encode(c) for c in commands]
    assert list(engine.journal.entries()) == []
    assert [encode(c) for c in replay(entries)] == [encode(c) for c in commands]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_replay_across_processes_and_hash_seeds_is_byte_identical(
    seed: str, recorded: tuple[bytes, bytes], tmp_path: Path
) -> None:
    journal, stream = recorded
    path = tmp_path / "journal.jsonl"
    path.write_bytes(journal)
    assert _run(["replay", str(path)], seed) == stream


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS[1:3])
def test_the_live_run_is_the_same_in_every_process(
    seed: str, recorded: tuple[bytes, bytes]
) -> None:
    journal, stream = recorded
    assert _run(["live"], seed) == journal + b"--\n" + stream

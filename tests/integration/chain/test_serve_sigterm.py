"""SIGTERM reaching `indexmaker serve --chain anvil` at points of its start (a real process on
real local chains): serve exits with status 0 within a bound and every anvil and exchange-sim
process it started is gone (stopped by PID), wherever the signal lands.

Before the signal handlers were installed first thing in `serve` (app/serve_run.py), a
SIGTERM arriving while the chains and the simulator started killed serve by the default
action: exit status -15 and both anvils left running in their own sessions."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..venues.test_serve_binance import INDEXMAKER, alive
from .test_chain_demo import children

STOP_BOUND_S = 45  # serve's own stop bound is 20 s (serve_run.STOP_TIMEOUT_S), plus the peers'
API = ("--api-port", "0")


@pytest.mark.slow
@pytest.mark.parametrize(
    "signal_at",
    [
        '"local_chain"',  # chains up, the exchange simulator and the service still starting
        '"service_started"',  # the hang seen on main: SIGTERM right after the start
    ],
)
def test_sigterm_during_or_right_after_the_start_stops_serve_and_its_peers(
    compiled: None, tmp_path: Path, signal_at: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    settings = tmp_path / "chain.toml"
    settings.write_text("[chain]\nconfirmations = 1\n")
    process = subprocess.Popen(
        [INDEXMAKER, "serve", "--config", str(settings), "--chain", "anvil", "--port", "0", *API],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    peers: list[int] = []
    seen: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if signal_at in line:
                break
        assert seen and signal_at in seen[-1], "".join(seen[-20:])
        peers = children(process.pid)
        assert len(peers) >= 2  # both anvils at least (the simulator too after the start)
        os.kill(process.pid, signal.SIGTERM)
        rest, _ = process.communicate(timeout=STOP_BOUND_S)  # drains its log as it stops
        assert process.returncode == 0, rest[-3000:]
        assert '"service_stopped"' in rest
        assert [pid for pid in peers if alive(pid)] == []
    finally:
        if process.poll() is None:  # a failed check: stop serve, then whatever it left
            process.kill()
            process.wait(timeout=10)
        for pid in peers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

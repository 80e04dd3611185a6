"""`indexmaker serve` (the Binance venue is the default): the service trades through the Binance
connector on an exchange-sim child process, which is stopped by PID with the service, and keeps
its journal apart from the in-process simulator's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..pipe_drain import drain

INDEXMAKER = str(Path(sys.executable).with_name("indexmaker"))


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.mark.slow
def test_serve_on_binance_connector_gets_live_books_and_stops_its_simulator(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    env["INDEXMAKER_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(  # no --venue: binance is the default
        [INDEXMAKER, "serve", "--chain", "sim", "--port", "0", "--api-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if '"service_started"' in line:
                url = json.loads(line)["fix"].replace("ws://", "http://").rsplit("/ws", 1)[0]
        assert url, "serve did not start"
        drain(process.stdout, [])  # serve logs on: an unread pipe would block it
        sims = children(process.pid)
        assert sims, "no exchange-sim child process"
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                health = json.loads(answer.read())
            if health.get("book_age_s") is not None:
                break
            time.sleep(0.2)
        assert health.get("book_age_s") is not None  # books arrive through the connector
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not any(alive(pid) for pid in sims)  # the simulator was stopped by PID
        # its own journal: the in-process simulator's file in the data dir stays untouched
        assert (tmp_path / "binance" / "indexmaker.sqlite3").exists()
        assert not (tmp_path / "indexmaker.sqlite3").exists()
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

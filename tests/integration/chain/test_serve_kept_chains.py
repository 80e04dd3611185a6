"""`indexmaker serve --chain anvil` with a data directory keeps its local chains across a
restart (app/kept_chains.py): anvil's state and the deployment in `<data_dir>/anvil/`, the
chain cursor and pending transactions in the journal beside them (app/chain_durability.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ..venues.test_serve_binance import INDEXMAKER, alive
from .test_chain_demo import children

CLIENT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # anvil's public account 3


class Serve:
    """One `serve --chain anvil` process on `data_dir`, stopped by PID."""

    def __init__(self, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
        env["INDEXMAKER_DATA_DIR"] = str(data_dir)
        command = [INDEXMAKER, "serve", "--chain", "anvil", "--port", "0", "--api-port", "0"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[dict[str, Any]] = []
        self.spawned: list[int] = []
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                self.lines.append(json.loads(line))
                if self.lines[-1].get("event") == "service_started":
                    self.spawned = children(self.process.pid)
                    return
        raise AssertionError("serve did not start: " + json.dumps(self.lines[-5:]))

    def event(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    def api(self, path: str) -> Any:
        url = self.event("query_api_started")[0]["url"]
        with urllib.request.urlopen(url + path, timeout=5) as response:
            return json.loads(response.read())

    def deposited(self, expected: Decimal, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        seen: Any = None
        while time.monotonic() < deadline:
            try:
                seen = self.api(f"/v1/collateral/8453/{CLIENT}")
            except OSError:  # no position yet: 404
                seen = None
            if seen is not None and Decimal(str(seen["deposited"])) == expected:
                return
            time.sleep(0.3)
        raise AssertionError(f"deposited {expected} not seen: {seen}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                assert self.process.wait(timeout=60) == 0
            finally:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait(timeout=10)
        for pid in self.spawned:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def deposit(data_dir: Path, amount: str) -> None:
    deployment = data_dir / "anvil" / "deployment.json"
    command = [INDEXMAKER, "deposit", CLIENT, amount, "--chain", "8453", "--fund"]
    result = subprocess.run(
        [*command, "--deployment", str(deployment)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def cursor(data_dir: Path) -> int:
    db = sqlite3.connect(data_dir / "anvil" / "indexmaker.sqlite3")
    try:
        rows = db.execute("SELECT value FROM meta WHERE name LIKE 'chain_cursor:8453:%'").fetchall()
    finally:
        db.close()
    assert len(rows) == 1
    return int(rows[0][0])


@pytest.mark.slow
def test_serve_on_anvil_keeps_its_chains_and_cursor_across_a_restart(
    compiled: None, tmp_path: Path
) -> None:
    first = Serve(tmp_path)
    try:
        assert first.event("local_chains_kept")[0]["resumed"] is False
        deposit(tmp_path, "100")
        first.deposited(Decimal(100))
    finally:
        first.stop()
    assert not any(alive(pid) for pid in first.spawned)  # anvil wrote its state and exited
    stored = cursor(tmp_path)
    assert stored > 0
    custody = {c["chain_id"]: c["custody"] for c in first.event("local_chain")}

    second = Serve(tmp_path)
    try:
        assert second.event("local_chains_kept")[0]["resumed"] is True
        assert {c["chain_id"]: c["custody"] for c in second.event("local_chain")} == custody
        # The journal remembers the first deposit; a second one is seen once, after it: the
        # port read on from the stored cursor and the first deposit was not counted again.
        second.deposited(Decimal(100), timeout=10)
        deposit(tmp_path, "50")
        second.deposited(Decimal(150))
        time.sleep(1.0)  # a few polls more: nothing read twice
        second.deposited(Decimal(150), timeout=1)
    finally:
        second.stop()
    assert cursor(tmp_path) > stored

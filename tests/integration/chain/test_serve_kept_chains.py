"""`indexmaker serve` on its default chains (anvil) keeps its local chains across a restart
(app/kept_chains.py): anvil's state and the deployment in `[chain] state_dir` (default
`<data_dir>/anvil/`), the chain cursor and pending transactions in the journal (beside them on
SQLite, in the database on PostgreSQL: app/chain_durability.py). `indexmaker deposit` finds
the served chains through GET /info and deposits from a test key serve funded."""

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

from ..pipe_drain import drain
from ..venues.test_serve_binance import INDEXMAKER, alive
from .test_chain_demo import children

CLIENT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # anvil's public account 3


class Serve:
    """One `serve` process (default chains: anvil) on `data_dir`, stopped by PID; `config`:
    a settings file."""

    def __init__(self, data_dir: Path, config: Path | None = None) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BINANCE_", "INDEXMAKER_", "EXCHANGE_SIM_"))
        }
        env["INDEXMAKER_DATA_DIR"] = str(data_dir)
        command = [INDEXMAKER, "serve", "--port", "0", "--api-port", "0"]
        if config is not None:
            command += ["--config", str(config)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[dict[str, Any]] = []
        self.spawned: list[int] = []
        self.later: list[str] = []  # serve's output after its start (drained, not parsed)
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if not line.startswith("{"):
                self.lines.append({"event": "text", "line": line})  # an error's line
            else:
                self.lines.append(json.loads(line))
                if self.lines[-1].get("event") == "service_started":
                    self.spawned = children(self.process.pid)
                    drain(self.process.stdout, self.later)  # an unread pipe would block serve
                    return
        raise AssertionError("serve did not start: " + json.dumps(self.lines[-5:]))

    def event(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    def api(self, path: str) -> Any:
        url = self.event("query_api_started")[0]["url"]
        with urllib.request.urlopen(url + path, timeout=5) as response:
            return json.loads(response.read())

    def deposited(self, expected: Decimal, timeout: float = 60, chain_id: int = 8453) -> None:
        deadline = time.monotonic() + timeout
        seen: Any = None
        while time.monotonic() < deadline:
            try:
                seen = self.api(f"/v1/collateral/{chain_id}/{CLIENT}")
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

    def url(self) -> str:
        return str(self.event("fix_listening")[0]["url"])


def deposit(served: Serve, amount: str, *chain: str) -> str:
    """`indexmaker deposit CLIENT AMOUNT [--chain ID]` against the served instance: the
    chains and addresses come from its GET /info; CLIENT's test key was funded by serve."""
    command = [INDEXMAKER, "deposit", CLIENT, amount, *chain, "--url", served.url()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


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
        assert "on chain 8453" in deposit(first, "100", "--chain", "8453")
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
        deposit(second, "50", "--chain", "8453")
        second.deposited(Decimal(150))
        time.sleep(1.0)  # a few polls more: nothing read twice
        second.deposited(Decimal(150), timeout=1)
    finally:
        second.stop()
    assert cursor(tmp_path) > stored


@pytest.mark.slow
def test_serve_on_anvil_with_postgresql_keeps_its_chains_in_state_dir(
    compiled: None, tmp_path: Path, postgres_url: str
) -> None:
    settings = tmp_path / "pg.toml"
    state_dir = tmp_path / "chains"
    settings.write_text(
        f'[store]\nbackend = "postgresql"\nurl = "{postgres_url}"\n'
        f'[chain]\nstate_dir = "{state_dir}"\n'
    )
    data_dir = tmp_path / "unused"  # neither chains nor journal go there
    first = Serve(data_dir, settings)
    try:
        # No --chain: the service's own chain (GET /info's chain_id, 42161), across the bridge.
        assert "on chain 42161" in deposit(first, "70")
        first.deposited(Decimal(70), chain_id=42161)
    finally:
        first.stop()
    assert sorted(p.name for p in state_dir.iterdir()) == [
        "chain-42161.json",
        "chain-8453.json",
        "deployment.json",
        "exchange-sim",  # the venue account, kept beside the chains
        "exchange-sim.log",  # peers.json is gone: a clean stop stopped every peer
    ]
    assert not data_dir.exists()
    custody = {c["chain_id"]: c["custody"] for c in first.event("local_chain")}

    second = Serve(data_dir, settings)
    try:
        assert second.event("local_chains_kept")[0]["resumed"] is True
        assert {c["chain_id"]: c["custody"] for c in second.event("local_chain")} == custody
        second.deposited(Decimal(70), timeout=10, chain_id=42161)  # the journal in PostgreSQL
        # The chain kept the client's balance: serve funded 1,000,000 and 70 went to custody.
        assert "wallet 999910.000000 USDC" in deposit(second, "20")
        second.deposited(Decimal(90), chain_id=42161)
    finally:
        second.stop()

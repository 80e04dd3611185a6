"""`indexmaker demo --chains` and `indexmaker serve --chain anvil` as real processes: the whole
collateral path on local chains, and every chain and simulator process stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from ..pipe_drain import drain
from ..venues.test_serve_binance import INDEXMAKER, alive


def children(pid: int) -> list[int]:
    """Every child of `pid`, whichever of its threads started it (anvil starts in a worker)."""
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.glob("*/children") if tasks.exists() else []:
        found += [int(p) for p in task.read_text().split()]
    return found


@pytest.mark.slow
def test_chain_demo_mints_to_every_client_and_checks_the_chain(
    compiled: None, tmp_path: Path
) -> None:
    result = subprocess.run(
        [INDEXMAKER, "demo", "--chains", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "exchange deposit address (asked from its API)" in out
    # Four mints, then two redemptions' burns and payouts, each checked against the chain.
    assert out.count("✓") == 8 and "✗" not in out and "MISMATCH" not in out
    # Every RPC client's aiohttp session was closed (web3 caches one per provider and loop).
    assert "Unclosed client session" not in result.stdout + result.stderr
    assert "the exchange credited 4 deposits on BASE" in out
    rows = json.loads((tmp_path / "chain-invoices.json").read_text())
    assert sorted(r["chain_id"] for r in rows) == [8453, 8453, 42161, 42161]
    for row in rows:
        assert int(row["token_units"]) > 0
        assert row["mint_tx_hash"].startswith("0x") and len(row["invoice_hash"]) == 66
    redemptions = json.loads((tmp_path / "chain-redemption.json").read_text())
    # A client of each chain, each paid on its own chain (42161: after crossing back).
    assert sorted(r["chain_id"] for r in redemptions) == [8453, 42161]
    for redemption in redemptions:
        burns = redemption["burns"]
        assert burns and [len(b["tx_hash"]) for b in burns] == [66] * len(burns)
        paid = Decimal(redemption["usdc_after"]) - Decimal(redemption["usdc_before"])
        assert paid == Decimal(redemption["net_paid"]) > 0
        assert redemption["payout_tx"].startswith("0x")
    fee = {r["chain_id"]: Decimal(r["withdrawal_fee"]) for r in redemptions}
    assert fee[42161] > fee[8453] > 0  # the way back adds the bridge's fee and gas
    # Crossing the bridge costs more than paying the exchange from the trading chain.
    fees = {r["chain_id"]: float(r["management_fee"]) for r in rows}
    assert fees[42161] > fees[8453] > 0


@pytest.mark.slow
def test_serve_on_local_chains_starts_them_and_stops_them_by_pid(
    compiled: None, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    settings = tmp_path / "chain.toml"  # [chain] settings; --chain sets the mode on top
    settings.write_text("[chain]\nconfirmations = 1\nhop_timeout = 90\n")
    command = [INDEXMAKER, "serve", "--config", str(settings), "--chain", "anvil"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--api-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    chain_and_sim: list[int] = []
    try:
        assert process.stdout is not None
        chains: list[dict[str, object]] = []
        started = False
        deadline = time.monotonic() + 120
        while not started and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if '"local_chain"' in line:
                chains.append(json.loads(line))
            started = '"service_started"' in line
        assert started, "serve did not start"
        later: list[str] = []
        drain(process.stdout, later)  # serve logs on: an unread pipe would block it
        assert sorted(int(str(c["chain_id"])) for c in chains) == [8453, 42161]
        assert [c["confirmations"] for c in chains] == [1, 1]  # the file's setting
        chain_and_sim = children(process.pid)
        assert len(chain_and_sim) >= 3  # two anvils and the exchange simulator
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not any(alive(pid) for pid in chain_and_sim)
    finally:
        if process.poll() is None:  # a failed check: stop serve, then whatever it left
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for pid in chain_and_sim:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

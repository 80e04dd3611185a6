"""`indexmaker demo` runs its clients through the server over real sockets, fast, and cleanly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from indexmaker.app.demo_common import SUMMARY_TITLE

CLI = [sys.executable, "-m", "indexmaker.app.cli"]
ZERO = Decimal(0)


def test_socket_demo_default_run(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [*CLI, "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert elapsed < 60
    assert "over WebSockets" in result.stdout and "service stopped" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "sockets"
    # By default it trades through the Binance connector on an exchange-sim child process,
    # whose books move while the clients trade, and which is stopped by PID at the end.
    venue = re.fullmatch(
        r"Binance connector on exchange-sim http://127\.0\.0\.1:\d+ \(pid (\d+)\)", summary["venue"]
    )
    assert venue, summary["venue"]
    assert (
        not Path(f"/proc/{venue.group(1)}").exists()
        or "State:\tZ" in Path(f"/proc/{venue.group(1)}/status").read_text()
    )
    assert summary["book_events"] > 500
    assert summary["url"].startswith("ws://127.0.0.1:")
    assert summary["missing_invoices"] == [] and summary["inconsistent_invoices"] == 0
    assert summary["reconnects"] >= 1 and summary["resent_messages"] >= 1
    assert len(summary["clients"]) == 12
    invoices = json.loads((tmp_path / "invoices.json").read_text())
    assert len(invoices) == summary["invoices"] >= 24
    assert len({i["client_order_id"] for i in invoices}) == len(invoices)
    for invoice in invoices:
        # The lots behind the tokens cost what the invoice charges: Σ quantity × price is the
        # assets value and Σ lot fees the exchange fee (each rounded to 6 decimals once).
        lots = invoice["lots"]
        assert lots
        value = sum((Decimal(lot["price"]) * Decimal(lot["quantity"]) for lot in lots), ZERO)
        fees = sum((Decimal(lot["fee"]) for lot in lots), ZERO)
        assert abs(value - Decimal(invoice["assets_value"])) <= Decimal("0.000002")
        assert abs(fees - Decimal(invoice["exchange_fee"])) <= Decimal("0.000001") * len(lots)
        # The exchange-sim takes a buy's commission in the base asset; sizing grosses it up,
        # so what arrives covers the order and it mints at once (SPEC §6, README "5. Mint").
        assert Decimal(invoice["fill_rate"]) >= Decimal("0.9999")
    for client in summary["clients"]:  # nobody is charged or returned more than deposited
        assert Decimal(client["paid"]) + Decimal(client["returned"]) <= Decimal(client["deposited"])
    # Issue 7: exchange notional bought stays within 1% of what clients received, and the
    # issuer's leftover inventory is bounded by one 5 USDC venue minimum per asset (105
    # distinct assets in the three indexes). Under load buy batches overlap: a batch counts
    # the surplus of those in flight instead of padding again (engine/carry.py,
    # tests/unit/engine/test_overlapping_batches.py).
    issuer = summary["issuer"]
    bought, delivered = Decimal(issuer["bought_notional"]), Decimal(issuer["delivered_notional"])
    assert delivered > 0 and bought / delivered <= Decimal("1.01")
    assert Decimal(issuer["unassigned_inventory_value"]) <= 105 * Decimal("5.1")
    notes = [n for c in summary["clients"] for n in c["notes"]]
    assert any("replayed id: rejected" in n for n in notes)
    assert any("unfunded order canceled: canceled" in n for n in notes)
    assert_plain_and_complete(result.stdout)
    # Issue 12: the running service then rebalances the index holding the most over the
    # exchange-sim: each round's report line, the end's per-asset table, summary.json.
    rebalance = summary["rebalance"]
    assert rebalance["version"] == 2 and rebalance["kind"] == "completed"
    assert int(rebalance["rounds"]) >= 1 and Decimal(rebalance["traded"]) > 0
    assert Decimal(rebalance["accuracy"]) > Decimal("0.99")
    symbol = rebalance["symbol"]
    rounds = re.findall(rf"^rebalance {symbol} v2 round (\d+): ", result.stdout, re.M)
    assert rounds == [str(n) for n in range(1, int(rebalance["rounds"]) + 1)]
    assert re.search(rf"^rebalance {symbol} v2 completed after \d+ rounds: ", result.stdout, re.M)
    assert f"rebalance of {symbol} to basket version 2" in result.stdout


def assert_plain_and_complete(out: str) -> None:
    """Into a pipe the demo writes plain lines: none cut at 80 columns, no box drawing, no
    redraw codes, the summary title on its own line (not on a table's border)."""
    lines = out.splitlines()
    assert not any(ch in out for ch in "│┃┏┗└┌─━\x1b")
    minted = [line for line in lines if line.startswith("minted ")]
    assert minted and all(re.search(r", fill rate \d+\.\d{4}%$", line) for line in minted)
    assert SUMMARY_TITLE in lines
    assert any(len(line) > 80 for line in lines)  # long lines are kept whole


def test_in_process_demo_still_available(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "demo", "--in-process", "--clients", "3", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "simulated" in result.stdout
    assert_plain_and_complete(result.stdout)
    assert json.loads((tmp_path / "invoices.json").read_text())
    # Issue 12: a rebalance after the buys, with its reports and its end in summary.json.
    assert re.search(r"^rebalance \w+ v2 completed after \d+ rounds: ", result.stdout, re.M)
    rebalance = json.loads((tmp_path / "summary.json").read_text())["rebalance"]
    assert rebalance["version"] == 2 and rebalance["kind"] == "completed"
    assert Decimal(rebalance["accuracy"]) > Decimal("0.99")

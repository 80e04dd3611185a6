"""A new user verifies a mint invoice end to end against a default `indexmaker serve` (anvil
chains, SQLite; issues 10/11): `order --wait --invoice-out` prints the invoice hash and the
mint transaction and saves the invoice; the query API's `/v1/invoices` item (and its page,
and the order's detail) carries the same body; `verify-invoice` checks each against chain 8453
with the custody addresses from the serve's GET /info (no --deployment, no make deploy) and
exits 0, and 1 for a tampered copy; `watch --history --invoice-out` saves the same invoice.
A sell on chain is then in `/v1/redemptions` with its burn and payout transactions."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ..venues.test_serve_binance import INDEXMAKER, alive
from .test_serve_kept_chains import CLIENT
from .test_serve_kill9 import Serve, _env, peer_pids, peers

HASH = r"0x[0-9a-f]{64}"


def verify(serve: Serve, path: Path, *extra: str) -> tuple[int, str]:
    """`indexmaker verify-invoice` as a user runs it: only the service's URL, run from a
    directory without .chains/ (so the addresses can only come from GET /info)."""
    done = subprocess.run(
        [INDEXMAKER, "verify-invoice", str(path), "--url", serve.fix, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(serve.data_dir),
        cwd=path.parent,
    )
    return done.returncode, done.stdout + done.stderr


def saved(path: Path, content: Any) -> Path:
    path.write_text(json.dumps(content))
    return path


@pytest.mark.slow
def test_a_minted_invoice_from_the_cli_and_the_query_api_verifies_on_chain(
    compiled: None, tmp_path: Path
) -> None:
    pids: list[int] = []
    serve = Serve(tmp_path, tmp_path / "serve.log")
    try:
        pids += peer_pids(peers(tmp_path))
        assert "on chain 42161" in serve.cli("deposit", CLIENT, "500")
        wire = tmp_path / "wire.json"
        out = serve.cli("order", "SY100", "buy", "200", "--wait", "--id", "vi-1",
                        "--invoice-out", str(wire))  # fmt: skip
        printed_hash = re.search(rf"invoice_hash: ({HASH})", out)
        printed_tx = re.search(rf"mint_tx_hash: ({HASH})", out)
        assert printed_hash and printed_tx, out
        body = json.loads(wire.read_text())
        assert (
            body["invoice_hash"],
            body["mint_tx_hash"],
        ) == printed_hash.groups() + printed_tx.groups()
        code, said = verify(serve, wire)
        assert code == 0 and "verified on chain 8453" in said, said

        page = serve.api("/v1/invoices")
        (item,) = page["items"]
        assert item["mint_tx_hash"] == body["mint_tx_hash"]
        assert item["invoice_hash"] == body["invoice_hash"]
        assert item["body"] == body  # what the client was sent, kept by the store
        for name, content, extra in (
            ("item.json", item, ()),
            ("page.json", page, ("--id", "vi-1")),
            ("detail.json", serve.api(f"/v1/orders/42161/{CLIENT}/vi-1"), ()),
        ):
            code, said = verify(serve, saved(tmp_path / name, content), *extra)
            assert code == 0 and f"minted {body['filled_quantity']}" in said, (name, said)

        # Tampered copies: a term changed after minting, and a quantity the chain did not mint.
        paid = {**item, "body": {**item["body"], "amount_paid": "1.000000"}}
        code, said = verify(serve, saved(tmp_path / "paid.json", paid))
        assert code == 1 and "the invoice was changed after minting" in said, said
        more = {**item["body"], "filled_quantity": "1"}
        code, said = verify(serve, saved(tmp_path / "more.json", more))
        assert code == 1 and "mismatch: filled_quantity" in said, said

        # `watch --history` shows the invoice again with its hashes and saves what it shows.
        watched = tmp_path / "watched.json"
        out = serve.cli("watch", "--history", "--duration", "4", "--invoice-out", str(watched))
        assert f"mint_tx_hash: {body['mint_tx_hash']}" in out, out
        assert json.loads(watched.read_text()) == body
        assert verify(serve, watched)[0] == 0

        # A sell on chain: its redemption invoice in the API with the burn and the payout.
        sold = tmp_path / "redemption.json"
        out = serve.cli("order", "SY100", "sell", "0.0003", "--approve", "--wait", "--id",
                        "vi-2", "--invoice-out", str(sold))  # fmt: skip
        assert re.search(r"redeemed 0\.0003\d* SY100 for vi-2", out), out
        (redeemed,) = serve.api("/v1/redemptions")["items"]
        kept = json.loads(sold.read_text())
        assert redeemed["client_order_id"] == "vi-2"
        assert Decimal(redeemed["net_paid"]) == Decimal(kept["net_paid"]) > 0
        assert redeemed["payout_tx"] == kept["payout_tx"] and re.fullmatch(HASH, kept["payout_tx"])
        assert [b["tx_hash"] for b in redeemed["burns"]] == [b["tx_hash"] for b in kept["burns"]]
        assert all(re.fullmatch(HASH, b["tx_hash"]) for b in redeemed["burns"])
        record = serve.api(f"/v1/orders/42161/{CLIENT}/vi-2")["record"]
        assert record["status"] == "redeemed" and record["reason"] is None
        assert Decimal(record["fill_rate"]) > 0
        assert Decimal(record["collateral_spent"]) == Decimal(kept["net_paid"])
    finally:
        os.kill(serve.process.pid, signal.SIGTERM)
        code = serve.process.wait(timeout=60)
        for pid in pids:  # serve stops them by PID; a failed stop leaves none behind either
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert code == 0

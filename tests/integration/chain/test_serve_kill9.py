"""A default `indexmaker serve` (anvil chains, SQLite) survives `kill -9` (issue 10, issue 11):
its local peers (both anvils, the exchange simulator) run in their own sessions and outlive
it, and the restarted serve adopts them (app/local_peers.py): the journal resumes on the same
chains and venue account, the minted order and its invoice are still served, a new order
mints, and a clean stop (SIGTERM) then stops serve and every peer by PID."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from indexmaker.app.cli_client import ANVIL_TEST_KEYS
from indexmaker.chain import anvil

from ..binance_sim.conftest import rest
from ..venues.test_serve_binance import INDEXMAKER, alive
from .test_serve_kept_chains import CLIENT

KEY = ANVIL_TEST_KEYS[3]  # CLIENT's public anvil key, funded by serve's fresh deployment


def _env(data_dir: Path, crash_at: str | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BINANCE_", "INDEXMAKER_", "EXCHANGE_SIM_"))
    }
    env |= {"INDEXMAKER_DATA_DIR": str(data_dir), "INDEXMAKER_KEY": KEY}
    return env if crash_at is None else {**env, "INDEXMAKER_CRASH_AT": crash_at}


class Serve:
    """`indexmaker serve` on its defaults in `data_dir` (`config`: a settings file;
    `crash_at`: an INDEXMAKER_CRASH_AT place, store/crash.py), its log in a file (an unread
    pipe would fill and stop it)."""

    def __init__(
        self, data_dir: Path, log: Path, config: Path | None = None, crash_at: str | None = None
    ) -> None:
        self.data_dir, self.log = data_dir, log
        command = [INDEXMAKER, "serve", "--port", "0", "--api-port", "0"]
        command += [] if config is None else ["--config", str(config)]
        with log.open("w") as sink:
            self.process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env=_env(data_dir, crash_at)
            )
        deadline = time.monotonic() + 90
        while not self.event("service_started"):
            assert self.process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "serve did not start: " + log.read_text()[-3000:]
            time.sleep(0.1)
        self.fix = self.event("fix_listening")[0]["url"]
        self.api_url = self.event("query_api_started")[0]["url"]

    def event(self, name: str) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [e for e in map(_json, lines) if e is not None and e.get("event") == name]

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.api_url + path, timeout=5) as response:
            return json.loads(response.read())

    def cli(self, *args: str) -> str:
        command = [INDEXMAKER, *args, "--url", self.fix]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60, env=_env(self.data_dir)
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def _json(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def peers(data_dir: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((data_dir / "anvil" / "peers.json").read_text())
    return record


def peer_pids(record: dict[str, Any]) -> list[int]:
    return [int(e["pid"]) for e in record["anvil"].values()] + [record["exchange_sim"]["pid"]]


def balances(record: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The venue account's balances, as the simulator answers them over its REST API."""
    sim = SimpleNamespace(url=record["exchange_sim"]["url"])
    status, _, body = rest(sim, "GET", "/api/v3/account")  # type: ignore[arg-type]
    assert status == 200, body
    return {b["asset"]: (b["free"], b["locked"]) for b in body["balances"]}


def held(serve: Serve) -> int:
    """CLIENT's SY100 on 8453 in base units (10^-18), read from the chain at the RPC URL and
    token address of the service's GET /info."""
    base = serve.fix.replace("ws://", "http://").removesuffix("/ws")
    with urllib.request.urlopen(base + "/info", timeout=5) as response:
        chain = json.loads(response.read())["chains"]["8453"]
    data = "0x70a08231" + CLIENT.removeprefix("0x").lower().rjust(64, "0")  # balanceOf
    call = {"to": chain["index_tokens"]["SY100"], "data": data}
    return int(str(anvil._rpc(chain["rpc_url"], "eth_call", [call, "latest"])), 16)


def minted(output: str, order_id: str) -> None:
    assert re.search(rf"minted \S+ SY100 for {order_id}", output), output


@pytest.mark.slow
def test_serve_killed_with_sigkill_adopts_its_peers_and_resumes(
    compiled: None, tmp_path: Path
) -> None:
    pids: list[int] = []
    try:
        _scenario(tmp_path, pids)
    finally:  # a failed run leaves no peer behind (ours, by PID)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _scenario(tmp_path: Path, pids: list[int]) -> None:
    first = Serve(tmp_path, tmp_path / "first.log")
    killed = False
    try:
        record = peers(tmp_path)
        pids += peer_pids(record)
        assert "on chain 42161" in first.cli("deposit", CLIENT, "500")
        minted(first.cli("order", "SY100", "buy", "200", "--wait", "--id", "k9-1"), "k9-1")
        venue = balances(record)
        os.kill(first.process.pid, signal.SIGKILL)  # serve's PID only
        first.process.wait(timeout=10)
        killed = True
    finally:
        if not killed:
            os.kill(first.process.pid, signal.SIGTERM)
            first.process.wait(timeout=60)
    assert all(alive(pid) for pid in pids)  # the peers outlived serve, as outside ones would

    second = Serve(tmp_path, tmp_path / "second.log")
    try:
        adopted = second.event("local_peer_adopted")
        assert sorted(e["pid"] for e in adopted) == sorted(pids)
        assert second.event("local_chains_kept")[0]["resumed"] is True
        assert peer_pids(peers(tmp_path)) == pids
        assert balances(record) == venue  # the same venue account, untouched
        path = f"/v1/orders/42161/{CLIENT}/k9-1"
        invoice = second.api(path)["invoice"]
        assert invoice["client_order_id"] == "k9-1" and invoice["total_amount"] == "200.000000"
        assert [i["client_order_id"] for i in second.api("/v1/invoices")["items"]] == ["k9-1"]
        minted(second.cli("order", "SY100", "buy", "100", "--wait", "--id", "k9-2"), "k9-2")
        assert balances(record) != venue  # the new order traded on the adopted venue
        # The README's sell as written: --approve finds chain 8453 in GET /info, no file.
        sold = second.cli("order", "SY100", "sell", "0.0003", "--approve", "--wait", "--id", "k9-3")
        assert "approved custody" in sold, sold
        assert re.search(r"redeemed 0\.0003\d* SY100 for k9-3", sold), sold
        tokens = held(second)  # k9-1 and k9-2 minted, 0.0003 sold
        assert tokens > 0
        account = balances(peers(tmp_path))  # the venue account the journal describes
    finally:
        os.kill(second.process.pid, signal.SIGTERM)
        code = second.process.wait(timeout=60)
    assert code == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]  # a clean stop stops every peer by PID
    assert not (tmp_path / "anvil" / "peers.json").exists()

    # The adopted peers' clean stop kept the chains with the journal (each anvil dumps its
    # state on SIGTERM): a plain restart loads them (nothing adopted) and the journal's
    # identity check passes: the same chains, balances, orders and invoices.
    third = Serve(tmp_path, tmp_path / "third.log")
    try:
        pids += peer_pids(peers(tmp_path))
        assert not third.event("local_peer_adopted")
        assert third.event("local_chains_kept")[0]["resumed"] is True
        ids = [i["client_order_id"] for i in third.api("/v1/invoices")["items"]]
        assert sorted(ids) == ["k9-1", "k9-2"]
        assert held(third) == tokens  # the adopted chains' SIGTERM dump, loaded
        # ... and the venue's: the simulator kept its account in <state_dir>/exchange-sim (it
        # used to start empty and credit the chain's deposits again, the basket gone)
        assert balances(peers(tmp_path)) == account
    finally:
        os.kill(third.process.pid, signal.SIGTERM)
        code = third.process.wait(timeout=60)
    assert code == 0, third.log.read_text()[-3000:]

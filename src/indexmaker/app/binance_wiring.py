"""The Binance connector as the service's venue (the default of `serve` and `demo`).

Without `BINANCE_REST_URL` in the environment, the Binance-wire simulator is started as a child
process on a free loopback port (`indexmaker exchange-sim --port 0`, plus the caller's market
options) and stopped by PID with the service; the connector signs with the simulator's published
Ed25519 test key. With `BINANCE_REST_URL`, `BINANCE_WS_API_URL` and `BINANCE_STREAM_URL` (e.g.
the real exchange's `https://api.binance.com`, `wss://ws-api.binance.com:443/ws-api/v3`,
`wss://stream.binance.com:9443`) and the key from `BINANCE_API_KEY` + `BINANCE_PRIVATE_KEY_FILE`
(docs/binance-connector.md), nothing is started: pointing the service at the real venue is
configuration only. Keys are never logged.

With `EXCHANGE_SIM_URL` (e.g. `http://127.0.0.1:8090` of an `indexmaker exchange-sim` the
operator runs), that simulator is used with its test key and nothing is started or stopped:
its accounts live as long as its process, so a restarted service (crash recovery, issue 10)
reconciles against the same account and balances, as it would on the real exchange. A
simulator started here is a child of the service; given a state directory
(`exchange_sim_state_args`: `serve` puts it under its data directory) it saves its accounts,
orders and trades there, so the next start of the service finds the same account too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from indexmaker.app.config import ConfigError
from indexmaker.observability.logging import register_secret
from indexmaker.venues.binance.rest import BinanceEndpoints
from indexmaker.venues.binance.signing import Credentials, load_ed25519_pem
from indexmaker.venues.binance.venue import BinanceVenue, BinanceVenueConfig


class ExchangeSimProcess:
    """`indexmaker exchange-sim` as a child process; `url` once it listens."""

    def __init__(
        self,
        *args: str,
        start_timeout_s: float = 30.0,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        """`log`: the child's own log file, and the child in its own session, so it outlives a
        SIGKILL of this process (app/local_peers.py adopts it); else a temporary log."""
        command = [str(Path(sys.executable).with_name("indexmaker")), "exchange-sim"]
        # its log goes to a file (a pipe nobody reads would fill and block the child)
        self._log: IO[str] = (
            open(log, "w+")  # noqa: SIM115 - lives as long as the child
            if log is not None
            else tempfile.NamedTemporaryFile("w+", prefix="exchange-sim-", suffix=".log")  # noqa: SIM115
        )
        self.process = subprocess.Popen(
            [*command, "--port", "0", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env} if env else None,  # e.g. its hot wallet's key
            start_new_session=log is not None,
        )
        self.url = ""
        deadline = time.monotonic() + start_timeout_s
        while not self.url and time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.05)
            for line in Path(self._log.name).read_text().splitlines():
                if "listening on " in line:
                    self.url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
        if not self.url:
            self.stop()
            raise ConfigError("venue binance: the exchange simulator did not start")

    def admin(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """`/sim/faults` (docs/exchange-sim.md): POST switches faults on, GET shows them,
        DELETE switches everything off. Tests and operators; raises HTTPError on a 400."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/sim/faults", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()


def exchange_sim_state_args(data_dir: Path | None) -> list[str]:
    """`exchange-sim` options that keep the simulator's accounts, orders and trades in
    `<data_dir>/binance/exchange-sim/` (beside the Binance venue's journal) across restarts;
    none when the service keeps nothing (`data_dir` None)."""
    if data_dir is None:
        return []
    return ["--state-dir", str(data_dir / "binance" / "exchange-sim")]


def binance_venue(
    pairs: Iterable[str],
    sim_args: Sequence[str] = (),
    sim_env: Mapping[str, str] | None = None,
    sim_url: str | None = None,
) -> tuple[BinanceVenue, ExchangeSimProcess | None]:
    """The connector, and the simulator process it trades on when no real URL is configured
    (`sim_args`: `exchange-sim` options for that process, e.g. `--indexes SY100`; `sim_env`:
    more environment for it; `sim_url`: a simulator already running, started by the caller).

    Raises ConfigError naming what is missing or when the simulator does not start."""
    rest_url = os.environ.get("BINANCE_REST_URL")
    if rest_url:
        ws_api = os.environ.get("BINANCE_WS_API_URL", "")
        stream = os.environ.get("BINANCE_STREAM_URL", "")
        if not ws_api or not stream:
            raise ConfigError(
                "venue binance: BINANCE_WS_API_URL and BINANCE_STREAM_URL are needed with "
                "BINANCE_REST_URL"
            )
        credentials = Credentials.from_env()
        if credentials is None:
            raise ConfigError("venue binance: BINANCE_API_KEY is not set")
        for secret in (credentials.api_key, credentials.hmac_secret):
            if secret:
                register_secret(secret)  # masked in any log line that quotes it
        endpoints = BinanceEndpoints(rest_url, ws_api, stream)
        return BinanceVenue(BinanceVenueConfig(endpoints, pairs=tuple(pairs)), credentials), None
    running = sim_url or os.environ.get("EXCHANGE_SIM_URL", "").rstrip("/")
    sim = None
    if running:
        if not running.startswith(("http://", "https://")):
            raise ConfigError(f"EXCHANGE_SIM_URL: not an http(s) URL: {running!r}")
        url = running
    else:
        sim = ExchangeSimProcess(*sim_args, env=sim_env)
        url = sim.url
    endpoints, credentials = exchange_sim_access(url)
    return BinanceVenue(BinanceVenueConfig(endpoints, pairs=tuple(pairs)), credentials), sim


def exchange_sim_access(url: str) -> tuple[BinanceEndpoints, Credentials]:
    """The exchange simulator listening at `url` (http://host:port): its REST, WebSocket API
    and stream endpoints, and its main account's published Ed25519 test key."""
    from indexmaker.venues.binance_sim.config import (
        TEST_ED25519_API_KEY,
        TEST_ED25519_PRIVATE_PEM,
    )

    ws = "ws" + url.removeprefix("http")
    key = load_ed25519_pem(TEST_ED25519_PRIVATE_PEM.encode())
    credentials = Credentials(TEST_ED25519_API_KEY, ed25519_key=key)
    return BinanceEndpoints(url, f"{ws}/ws-api/v3", ws), credentials

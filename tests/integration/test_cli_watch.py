"""`indexmaker watch` (the real executable) across a restart of `indexmaker serve`: it shows
the server's close reason and reconnects to the new run, which continues the numbering of
the first (the same data directory: server_seq and the resend outbox are durable), so the
client resumes where it was instead of being told the server restarted."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from .test_cli_startup import INDEXMAKER, indexmaker_env


def _wait_for(path: Path, pattern: str, process: subprocess.Popen[bytes], limit: float = 15) -> str:
    deadline = time.monotonic() + limit
    while True:
        text = path.read_text()
        found = re.search(pattern, text)
        if found:
            return found.group(0)
        assert process.poll() is None and time.monotonic() < deadline, (pattern, text)
        time.sleep(0.05)


def _serve(log: Path, port: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*INDEXMAKER, "serve", "--chain", "sim", "--port", str(port), "--api-port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=indexmaker_env(INDEXMAKER_DATA_DIR=str(log.parent / "data")),
        )


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=5)


def test_watch_shows_the_close_reason_and_resumes_across_the_restart(tmp_path: Path) -> None:
    first = _serve(tmp_path / "serve1.log", 0)
    processes = [first]
    try:
        listening = _wait_for(tmp_path / "serve1.log", r"ws://127\.0\.0\.1:(\d+)/ws", first)
        port = int(listening.rsplit(":", 1)[1].split("/")[0])
        out = tmp_path / "watch.out"
        with out.open("wb") as sink:
            watch = subprocess.Popen(
                [*INDEXMAKER, "watch", "--url", listening, "--test-key", "2", "--duration", "40"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=indexmaker_env(),
            )
        processes.append(watch)
        _wait_for(out, "watching 0x", watch)
        # Served without --sim-deposits: the simulated chain's deposit endpoint is off.
        deposit = subprocess.run(
            [*INDEXMAKER, "deposit", "0x" + "ab" * 20, "10", "--url", listening],
            capture_output=True,
            text=True,
            timeout=30,
            env=indexmaker_env(),
        )
        assert deposit.returncode == 1
        assert deposit.stderr.startswith(
            "indexmaker deposit: deposit refused: POST /sim/deposit is off"
        )
        # An order waiting for its invoice (never funded, so it waits) sees the same.
        order_out = tmp_path / "order.out"
        args = ["--url", listening, "--wait-timeout", "40"]
        with order_out.open("wb") as sink:
            order = subprocess.Popen(
                [*INDEXMAKER, "order", "SY100", "buy", "25", "--wait", "--test-key", "3", *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=indexmaker_env(),
            )
        processes.append(order)
        _wait_for(order_out, "accepted o-", order)
        assert _stop(first) == 0
        closed = r"disconnected: closed by the server \(1001: server shutting down\)"
        _wait_for(out, closed, watch)
        _wait_for(order_out, closed + " \\(reconnecting\\)", order)
        second = _serve(tmp_path / "serve2.log", port)
        processes.append(second)
        _wait_for(tmp_path / "serve2.log", "fix_listening", second)
        _wait_for(out, r"reconnected; resumed after server_seq", watch)
        # The waiting order's session comes back: a challenge and its signed resume, ACKed.
        _wait_for(order_out, closed + r" \(reconnecting\)\nACK  seq 1\nACK  seq 2", order)
        assert _stop(watch, signal.SIGINT) == 0
        seen = out.read_text() + order_out.read_text()
        assert "connection lost" not in seen and "server restarted" not in seen
    finally:
        for process in processes:
            _stop(process)

"""Local EVM nodes: anvil from npm `@foundry-rs/anvil`, started on 127.0.0.1 and stopped by PID.

The binary is the platform package's own (node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil),
run directly rather than through the npm wrapper script, so the PID we record is anvil's and a
SIGTERM to it stops the node. Nothing is downloaded at run time; `npm ci` installed it.

CLI (used by `make chains` / `make chains-stop`):
    python -m indexmaker.chain.anvil start [--run-dir .chains]   # chains 42161 and 8453
    python -m indexmaker.chain.anvil stop  [--run-dir .chains]
Exit status 2 on bad input (unknown command, node already running, no binary).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RUN_DIR = ROOT / ".chains"
# Chain ids and ports of `make chains` (SPEC §7: source chain Arbitrum, trading chain Base).
CHAINS: dict[str, tuple[int, int]] = {"arbitrum": (42161, 8545), "base": (8453, 8546)}
READY_TIMEOUT_S = 20.0


class AnvilError(RuntimeError):
    """anvil is missing, would not start, or did not answer in time."""


def anvil_binary(root: Path = ROOT) -> Path:
    """Path of the anvil executable installed by `npm ci` for this platform."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    osname = {"linux": "linux", "darwin": "darwin"}.get(sys.platform, sys.platform)
    path = root / "node_modules" / "@foundry-rs" / f"anvil-{osname}-{arch}" / "bin" / "anvil"
    if not path.is_file():
        raise AnvilError(f"anvil not found at {path}: run `npm ci` (make chains does)")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class AnvilNode:
    """A running anvil: its chain id, JSON-RPC URL (http) and process id."""

    chain_id: int
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def _rpc(url: str, method: str, params: list[object] | None = None) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=2) as resp:  # loopback only
        return json.loads(resp.read())["result"]


def start(
    chain_id: int,
    port: int | None = None,
    *,
    log: Path | None = None,
    block_time: float | None = None,
    no_mining: bool = False,
    fork_url: str | None = None,
    state: Path | None = None,
    state_interval: int | None = None,
    genesis_timestamp: int | None = None,
) -> AnvilNode:
    """Start anvil for `chain_id` on 127.0.0.1:`port` (a free one if None); wait until it answers.

    `no_mining`: transactions wait in the mempool until `evm_mine` (stuck-transaction tests).
    `fork_url`: start from that node's latest state (a second node of the same chain).
    `state`: anvil's `--state` file: loaded on start if it exists, written when the node
    exits on SIGTERM (`stop`), so the chain (blocks, contracts, balances) outlives the process;
    `state_interval`: also written every that many seconds (anvil `--state-interval`), so a
    node killed without SIGTERM (a power cut) loses at most that much.
    `genesis_timestamp`: the genesis block's time (default: the start's), so two nodes can
    have the same genesis.
    Raises AnvilError if it exits or does not answer `eth_chainId` within READY_TIMEOUT_S.
    """
    port = port if port is not None else free_port()
    args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--chain-id", str(chain_id), "--accounts", "10", "--silent"]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    if no_mining:
        args.append("--no-mining")
    if genesis_timestamp is not None:
        args += ["--timestamp", str(genesis_timestamp)]
    if fork_url is not None:
        args += ["--fork-url", fork_url]
    if state is not None:
        args += ["--state", str(state)]
        if state_interval is not None:
            args += ["--state-interval", str(state_interval)]
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
    node = AnvilNode(chain_id, port, proc.pid)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AnvilError(f"anvil (chain {chain_id}, port {port}) exited with {proc.returncode}")
        try:
            if int(str(_rpc(node.url, "eth_chainId")), 16) == chain_id:
                return node
        except OSError:
            pass
        time.sleep(0.05)
    stop(proc.pid)
    raise AnvilError(f"anvil (chain {chain_id}, port {port}) did not answer in {READY_TIMEOUT_S}s")


def gone(pid: int) -> bool:
    """No process `pid`, or only its zombie (exited, not yet reaped by a parent that is not
    us: an adopted node's exit is waited for by whoever inherited it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False  # no /proc (macOS): alive as far as we can tell


def stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM the anvil with this PID, SIGKILL after `timeout` s; a gone process is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:  # not our child (started by another command): poll for it
            if gone(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def start_all(run_dir: Path = RUN_DIR) -> list[AnvilNode]:
    """Start the two chains of CHAINS; write run_dir/<name>.json ({chain_id, port, pid, url})."""
    run_dir.mkdir(parents=True, exist_ok=True)
    nodes: list[AnvilNode] = []
    for name, (chain_id, port) in CHAINS.items():
        state = run_dir / f"{name}.json"
        if state.exists():
            raise AnvilError(f"{state} exists: chain {name} may be running (make chains-stop)")
        node = start(chain_id, port, log=run_dir / f"{name}.log")
        state.write_text(json.dumps({**node.__dict__, "url": node.url}) + "\n")
        nodes.append(node)
    return nodes


def stop_all(run_dir: Path = RUN_DIR) -> list[str]:
    """Stop every chain with a state file in run_dir, by its recorded PID; remove the files."""
    stopped = []
    for state in sorted(run_dir.glob("*.json")):
        if state.stem not in CHAINS:
            continue
        stop(int(json.loads(state.read_text())["pid"]))
        state.unlink()
        stopped.append(state.stem)
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m indexmaker.chain.anvil")
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR)
    ns = parser.parse_args(argv)
    try:
        if ns.command == "start":
            for node in start_all(ns.run_dir):
                print(f"chain {node.chain_id}: {node.url} (pid {node.pid})")
        else:
            print("stopped: " + (", ".join(stop_all(ns.run_dir)) or "nothing was running"))
    except AnvilError as exc:
        print(f"chains: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

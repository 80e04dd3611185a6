"""`serve`'s local peers outlive a crash of serve (issue 10, issue 11): both anvil chains and
the exchange simulator run in their own sessions, as the real chains and venue run outside
our process, and `<state_dir>/peers.json` records each one's PID, address and identity:

    {"anvil": {"<chain id>": {"pid", "port", "block", "hash"}},
     "exchange_sim": {"pid", "url", "instance", "args"}}

A restarted serve ADOPTS a recorded peer that is alive and answers with the recorded
identity: an anvil whose PID is alive, whose command line names anvil and that port, and
whose `eth_chainId` and recorded block's hash are the recorded ones (not block 0, which a
reloaded anvil answers unreliably: chain_serve.genesis_hash); a simulator whose
`GET /sim/instance` returns the recorded instance id and PID and which was started with the
options serve would give it now (it watches the same trading chain URL). A stranger on a
recorded port never matches (another block hash, another instance id) and is left alone; a
peer that is gone is started afresh (anvil from its `--state` file). A simulator of ours
that cannot be adopted (its chain was restarted elsewhere) is stopped by PID first.

A clean stop of serve (SIGTERM/SIGINT) stops every peer by PID, as before, and removes the
file. Anvil also writes its state every STATE_INTERVAL_S seconds (`--state-interval`), so a
machine restart, which takes the peers down too, loses at most that interval of chain
history (docs/adapters.md says what the operator does then).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexmaker.app.binance_wiring import ExchangeSimProcess
from indexmaker.chain import anvil
from indexmaker.observability.logging import log_event

PEERS = "peers.json"
SIM_LOG = "exchange-sim.log"
STATE_INTERVAL_S = 5  # anvil's periodic state dump: what a power cut may lose


def read_peers(directory: Path) -> dict[str, Any]:
    """The record of `directory` (empty when none, or when it cannot be read: nothing is
    adopted then, and a peer of ours still running is a stranger to us)."""
    try:
        data = json.loads((directory / PEERS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_peers(directory: Path, record: Mapping[str, Any]) -> None:
    """Replace the record atomically (never a half-written file after a crash)."""
    tmp = directory / (PEERS + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(directory / PEERS)


def forget_peers(directory: Path) -> None:
    """After a clean stop: every peer was stopped, nothing to adopt."""
    (directory / PEERS).unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """A process `pid` runs (not a zombie) and we may signal it."""
    try:
        return not anvil.gone(pid)
    except PermissionError:  # another user's process: not ours
        return False


def _command_line(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None  # no /proc (macOS): the RPC identity alone decides
    return raw.decode(errors="replace").split("\0")


def block_hash(url: str, number: int | str) -> tuple[int, str]:
    """(number, hash) of a block at `url` (`number`: an int or "latest"). Raises OSError
    when the node does not answer or has no such block."""
    tag = hex(number) if isinstance(number, int) else number
    block = anvil._rpc(url, "eth_getBlockByNumber", [tag, False])
    if not isinstance(block, dict):
        raise OSError(f"{url}: no block {number}")
    return int(str(block["number"]), 16), str(block["hash"])


def adopt_anvil(chain_id: int, entry: Mapping[str, Any]) -> anvil.AnvilNode | None:
    """The recorded node of `chain_id` if it is alive and is the recorded chain, else None."""
    try:
        pid, port = int(entry["pid"]), int(entry["port"])
        number, recorded = int(entry["block"]), str(entry["hash"])
    except (KeyError, TypeError, ValueError):
        return None
    if not alive(pid):
        return None
    command = _command_line(pid)
    if command is not None and (
        not command or "anvil" not in Path(command[0]).name or str(port) not in command
    ):
        return None  # the PID was reused by another program
    node = anvil.AnvilNode(chain_id, port, pid)
    try:
        if int(str(anvil._rpc(node.url, "eth_chainId")), 16) != chain_id:
            return None
        # a block of our own history, not block 0 (a reloaded anvil answers it unreliably)
        if block_hash(node.url, number) != (number, recorded):
            return None
    except (OSError, ValueError, KeyError):
        return None
    return node


def adoptable(record: Mapping[str, Any]) -> dict[int, anvil.AnvilNode]:
    """The record's anvil nodes that can be adopted, by chain id."""
    out: dict[int, anvil.AnvilNode] = {}
    for key, entry in dict(record.get("anvil") or {}).items():
        node = adopt_anvil(int(key), entry) if str(key).isdigit() else None
        if node is not None:
            out[int(key)] = node
    return out


@dataclass
class AnvilStarter:
    """`start_node` for start_local_chains: adopts a node of `live` (adoptable()), else
    starts one that dumps its state every STATE_INTERVAL_S; `adopted`: chain ids adopted."""

    live: dict[int, anvil.AnvilNode]

    def __post_init__(self) -> None:
        self.adopted: set[int] = set()

    def __call__(self, chain_id: int, state: Path | None = None) -> anvil.AnvilNode:
        node = self.live.get(chain_id)
        if node is not None:
            self.adopted.add(chain_id)
            log_event("local_peer_adopted", peer="anvil", chain_id=chain_id, pid=node.pid)
            return node
        return anvil.start(chain_id, state=state, state_interval=STATE_INTERVAL_S)


def anvil_record(nodes: Mapping[int, anvil.AnvilNode]) -> dict[str, Any]:
    """peers.json's "anvil" part for running `nodes`: PID, port and the head block's number
    and hash (blocks of a local anvil never reorg, so that block identifies this chain)."""
    out: dict[str, Any] = {}
    for chain_id, node in sorted(nodes.items()):
        number, head = block_hash(node.url, "latest")
        out[str(chain_id)] = {"pid": node.pid, "port": node.port, "block": number, "hash": head}
    return out


@dataclass
class LocalSim:
    """The exchange simulator serve trades on: started here (`process`) or adopted (`pid`)."""

    url: str
    pid: int
    process: ExchangeSimProcess | None = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        else:
            anvil.stop(self.pid)  # by PID, SIGKILL after a grace period; a gone one is fine


def _sim_identity(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/sim/instance", timeout=2) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def start_or_adopt_sim(
    directory: Path, record: Mapping[str, Any], args: Sequence[str], env: Mapping[str, str]
) -> tuple[LocalSim, dict[str, Any]]:
    """(the simulator, its peers.json entry): the recorded one when it is alive, answers
    with its recorded instance id and PID and was started with `args`; else a new one in its
    own session logging to `<directory>/exchange-sim.log`. Raises ConfigError when a new one
    does not start."""
    entry = dict(record.get("exchange_sim") or {})
    pid, url = entry.get("pid"), entry.get("url")
    if isinstance(pid, int) and isinstance(url, str) and alive(pid):
        seen = _sim_identity(url)
        ours = seen is not None and seen == {"instance": entry.get("instance"), "pid": pid}
        if ours and entry.get("args") == list(args):
            log_event("local_peer_adopted", peer="exchange_sim", pid=pid, url=url)
            return LocalSim(url, pid), entry
        if ours:  # ours, but watching a chain that is gone: stop it, start one that watches
            log_event("local_peer_replaced", peer="exchange_sim", pid=pid)
            anvil.stop(pid)
    process = ExchangeSimProcess(*args, env=env, log=directory / SIM_LOG)
    seen = _sim_identity(process.url) or {}
    entry = {
        "pid": process.process.pid,
        "url": process.url,
        "instance": seen.get("instance"),
        "args": list(args),
    }
    return LocalSim(process.url, process.process.pid, process), entry

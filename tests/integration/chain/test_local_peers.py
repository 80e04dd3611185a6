"""Adoption refuses strangers (app/local_peers.py): a recorded anvil is adopted only when its
PID, command line, chain id and recorded block hash all match; a recorded simulator only when
`GET /sim/instance` answers with the recorded id and PID. Real processes on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

from indexmaker.app.local_peers import adopt_anvil, anvil_record, start_or_adopt_sim
from indexmaker.chain import anvil

from ..venues.test_serve_binance import alive


def test_an_anvil_is_adopted_only_with_its_recorded_identity(tmp_path: Path) -> None:
    node = anvil.start(8453)
    other = anvil.start(8453)  # a stranger: same chain id, same (deterministic) genesis
    try:
        # one block each at another time: anvil's blocks are otherwise the same everywhere
        for n, stamp in ((node, 2_000_000_000), (other, 2_000_000_001)):
            anvil._rpc(n.url, "evm_setNextBlockTimestamp", [stamp])
            anvil._rpc(n.url, "evm_mine")
        entry = anvil_record({8453: node})["8453"]
        assert entry["block"] == 1
        assert adopt_anvil(8453, entry) == node
        assert adopt_anvil(42161, entry) is None  # another chain id answers there
        assert adopt_anvil(8453, {**entry, "port": other.port}) is None  # PID's own port only
        # the stranger: an anvil of that chain id with a block at that height, not ours
        assert adopt_anvil(8453, {**entry, "pid": other.pid, "port": other.port}) is None
        assert adopt_anvil(8453, {**entry, "block": 2}) is None  # no such block yet
        assert adopt_anvil(8453, {**entry, "pid": os.getpid()}) is None  # not an anvil
        assert adopt_anvil(8453, {"pid": node.pid}) is None  # a damaged record
    finally:
        anvil.stop(other.pid)
        anvil.stop(node.pid)
    assert adopt_anvil(8453, entry) is None  # gone


def test_a_simulator_is_adopted_only_with_its_instance_id(tmp_path: Path) -> None:
    args = ["--symbols", "BTCUSDC"]
    first, entry = start_or_adopt_sim(tmp_path, {}, args, {})
    second = None
    try:
        assert first.process is not None and entry["pid"] == first.pid
        again, same = start_or_adopt_sim(tmp_path, {"exchange_sim": entry}, args, {})
        assert (again.process, again.pid, again.url, same) == (None, first.pid, first.url, entry)
        # A record naming that URL with another instance id: a stranger, left alone.
        forged = {"exchange_sim": {**entry, "instance": "0" * 32}}
        second, fresh = start_or_adopt_sim(tmp_path, forged, args, {})
        assert second.process is not None and second.pid != first.pid and alive(first.pid)
        assert fresh["instance"] not in (entry["instance"], None)
        # Ours but started with other options (it watches a chain that is gone): replaced.
        third, _ = start_or_adopt_sim(
            tmp_path, {"exchange_sim": fresh}, ["--symbols", "ETHUSDC"], {}
        )
        try:
            assert third.pid != second.pid and not alive(second.pid)
        finally:
            third.stop()
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert not alive(first.pid)

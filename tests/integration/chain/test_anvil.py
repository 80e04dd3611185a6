"""anvil process control (make chains / chains-stop) and deploy's refusal without chains."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from indexmaker.chain import anvil, deploy


def test_start_answers_with_its_chain_id_and_stop_ends_the_process(compiled: None) -> None:
    node = anvil.start(42161)
    try:
        assert anvil._rpc(node.url, "eth_chainId") == hex(42161)
    finally:
        anvil.stop(node.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(node.pid, 0)


def test_stop_all_stops_recorded_pids_only_and_removes_state(tmp_path: Path) -> None:
    node = anvil.start(8453)
    (tmp_path / "base.json").write_text(json.dumps({"pid": node.pid, "url": node.url}))
    (tmp_path / "other.json").write_text(json.dumps({"pid": 1}))  # not a chain: left alone
    assert anvil.stop_all(tmp_path) == ["base"]
    with pytest.raises(ProcessLookupError):
        os.kill(node.pid, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]


def test_start_all_refuses_when_a_chain_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "arbitrum.json").write_text("{}")
    assert anvil.main(["start", "--run-dir", str(tmp_path)]) == 2
    assert "may be running (make chains-stop)" in capsys.readouterr().err


def test_deploy_without_chains_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deploy: chain arbitrum is not running")
    assert deploy.ANVIL_KEY_0[2:] not in err

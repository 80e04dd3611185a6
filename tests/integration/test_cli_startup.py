"""The real `indexmaker` executable refusing bad start-up values: one line naming the
problem on stderr, exit status 2, nothing started. Each case is a subprocess that ends by
itself within seconds (a refused value never gets as far as listening)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexmaker.app.config import SECP256K1_ORDER

_SCRIPT = Path(sys.executable).with_name("indexmaker")
INDEXMAKER = [str(_SCRIPT)] if _SCRIPT.exists() else [shutil.which("indexmaker") or "indexmaker"]


def indexmaker_env(**extra: str) -> dict[str, str]:
    """This environment without the caller's INDEXMAKER_* settings, plus `extra`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INDEXMAKER_") or k == "INDEXMAKER_DATA_DIR"
    }
    return {**clean, **extra}


def indexmaker(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INDEXMAKER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=indexmaker_env(**(env or {})),
    )


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused start-up prints (logging before it is allowed on stderr)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("indexmaker")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--port", "70000"], "indexmaker serve: --port: must be less than or equal to 65535"),
        (["--port", "-1"], "indexmaker serve: --port: must be greater than or equal to 0"),
        (["--port", "3k"], "indexmaker serve: argument --port: expected a whole number, got '3k'"),
        (["--host", "bad host!"], "indexmaker serve: --host: must match pattern"),
        (["--api-port", "65536"], "indexmaker serve: --api-port: must be less than or equal"),
        (["--config", "/nonexistent.toml"], "indexmaker serve: /nonexistent.toml: No such file"),
    ],
)
def test_serve_refuses_bad_command_line_values(args: list[str], line: str) -> None:
    assert refused(indexmaker("serve", *args)).startswith(line)


def test_serve_refuses_a_bad_chain_setting(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[chain]\nmode = "mainnet"\n')
    line = refused(indexmaker("serve", "--config", str(config), "--port", "0"))
    assert line.startswith("indexmaker serve: chain.mode: must be 'sim', 'anvil' or 'external'")
    line = refused(indexmaker("serve", "--chain", "mainnet"))
    assert "argument --chain: invalid choice: 'mainnet'" in line


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            'mode = "external"\nrpc_urls = { 42161 = "http://a" }\n',
            'chain.rpc_urls: mode "external" needs the URL of chain 8453 (e.g. rpc_urls = '
            '{ 42161 = "http://127.0.0.1:8545", 8453 = "http://…" })',
        ),
        (
            'mode = "external"\nrpc_urls = { 42161 = "ftp://x", 8453 = "http://127.0.0.1:1" }\n',
            "chain.rpc_urls.42161: expected an http:// or https:// JSON-RPC URL",
        ),
        (
            'mode = "external"\nrpc_urls = { 1 = "http://a", 42161 = "http://b" }\n',
            "chain.rpc_urls.1: not a chain of the path (chain ids 42161, 8453)",
        ),
        (
            'mode = "external"\nrpc_urls = { 42161 = "http://a", 8453 = "http://b" }\n',
            'chain.deployment: mode "external" needs the deployed-addresses file',
        ),
        ('rpc_urls = { 8453 = "http://b" }\n', 'chain.rpc_urls: only for mode "external"'),
        (
            'mode = "external"\nrpc_urls = { 42161 = "http://127.0.0.1:1", 8453 = "http://b" }'
            '\ndeployment = "/nonexistent.json"\n',
            "chain.deployment: cannot read /nonexistent.json (No such file or directory)",
        ),
        (
            'mode = "external"\nrpc_urls = { 42161 = "http://a", 8453 = "http://b" }\n'
            'fallback_rpc_urls = { 8453 = ["http://b"] }\ndeployment = "d.json"\n',
            "chain.fallback_rpc_urls.8453: repeats rpc_urls.8453",
        ),
        (
            '[store]\nbackend = "postgresql"\nurl = "postgresql://127.0.0.1:1/x"\n',
            'chain.state_dir: required with mode "anvil" and store.backend "postgresql"',
        ),
    ],
)
def test_serve_refuses_bad_chain_places(tmp_path: Path, text: str, line: str) -> None:
    config = tmp_path / "chain.toml"
    config.write_text(text if text.startswith("[") else "[chain]\n" + text)
    assert refused(indexmaker("serve", "--config", str(config), "--port", "0")).startswith(
        f"indexmaker serve: {line}"
    )


def test_serve_refuses_a_state_dir_it_cannot_use(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a directory\n")
    config = tmp_path / "chain.toml"
    config.write_text(f'[chain]\nstate_dir = "{taken}/chains"\n')
    line = refused(indexmaker("serve", "--config", str(config), "--port", "0"))
    assert line == (
        f"indexmaker serve: chain.state_dir: cannot keep the chains in {taken}/chains: "
        "Not a directory"
    )


def test_serve_refuses_a_bad_setting_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[solver]\ntick = 0\n[server]\nhost = "127.0.0.1"\n')
    line = refused(indexmaker("serve", "--config", str(config), "--port", "0"))
    assert line.startswith("indexmaker serve: solver.tick: must be greater than or equal to 0.001")


def test_serve_refuses_a_port_in_use(busy_port: int) -> None:
    line = refused(indexmaker("serve", "--chain", "sim", "--port", str(busy_port)))
    assert line == (
        "indexmaker serve: server.host/server.port (--host/--port): "
        f"cannot listen on 127.0.0.1:{busy_port}: address already in use"
    )


def test_serve_refuses_a_query_api_port_in_use(busy_port: int) -> None:
    line = refused(
        indexmaker("serve", "--chain", "sim", "--port", "0", "--api-port", str(busy_port))
    )
    assert line == (
        "indexmaker serve: api.host/api.port (--api-port): "
        f"cannot listen on 127.0.0.1:{busy_port}: address already in use"
    )


def test_serve_refuses_a_host_it_cannot_bind() -> None:
    # 192.0.2.1 (TEST-NET-1, RFC 5737) is never an address of this machine.
    line = refused(indexmaker("serve", "--chain", "sim", "--host", "192.0.2.1", "--port", "0"))
    assert "cannot listen on 192.0.2.1:0: cannot assign requested address" in line


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"INDEXMAKER_SERVER_KEY": "0"}, "INDEXMAKER_SERVER_KEY: expected a 32-byte hex"),
        ({"INDEXMAKER_SERVER_KEY": hex(SECP256K1_ORDER)}, "INDEXMAKER_SERVER_KEY: not a valid"),
        ({"INDEXMAKER_SERVER_KEY": "0x" + "ab" * 31}, "INDEXMAKER_SERVER_KEY: expected a 32"),
        ({"INDEXMAKER_SERVER_KEY_FILE": "/nonexistent.key"}, "INDEXMAKER_SERVER_KEY_FILE: No"),
    ],
)
def test_serve_refuses_a_bad_server_key(env: dict[str, str], line: str) -> None:
    assert refused(indexmaker("serve", "--port", "0", env=env)).startswith(
        f"indexmaker serve: {line}"
    )


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--url", "127.0.0.1:3000/ws"], {}, "indexmaker quote: --url: expected ws://HOST:PORT"),
        (["--url", "http://127.0.0.1:3000/ws"], {}, "indexmaker quote: --url: expected ws://"),
        ([], {"INDEXMAKER_URL": "localhost:3000"}, "indexmaker quote: INDEXMAKER_URL: expected"),
        (["--timeout", "nan"], {}, "indexmaker quote: argument --timeout: expected seconds in"),
        (["--timeout", "-1"], {}, "indexmaker quote: argument --timeout: expected seconds in"),
        (["--chain-id", "0"], {}, "indexmaker quote: argument --chain-id: expected a chain id"),
    ],
)
def test_client_commands_refuse_bad_values_before_connecting(
    args: list[str], env: dict[str, str], line: str
) -> None:
    assert refused(indexmaker("quote", "SY100", "10", *args, env=env)).startswith(line)

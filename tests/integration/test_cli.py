"""The `indexmaker` client commands as subprocesses against a served instance.

One `indexmaker serve` (a real child process on an ephemeral loopback port, fast simulated
peers from a TOML file) serves the whole module and is stopped with SIGTERM at the end, which
must exit 0. Orders that trade go to SYL2 (16 assets), and the file raises the venue's
order-rate limit (100 orders per 10 s by default), so neither holds a test up. Argument errors
that need no server are checked in-process through `main()`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from indexmaker.app.cli import ANVIL_TEST_KEYS, main
from indexmaker.server.signing import Signer

FAST_TOML = """
indexes = ["SY100", "SYL2"]
log_level = "INFO"
[server]
host = "127.0.0.1"
[api]
port = 0
[solver]
mint_idle = 0.3
order_rate_limits = [{ name = "ORDERS_10S", limit = 100000, interval = 10 }]
[sim]
book_refresh = 1
exchange_latency = 0.005
bridge_delay = 0.05
wallet_delay = 0.03
mint_delay = 0.02
[chain]
mode = "sim"                 # the in-process chain: /sim/deposit (anvil: tests/integration/chain)
"""
CLI = [sys.executable, "-m", "indexmaker.app.cli"]


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _env(key: str | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INDEXMAKER_") or k == "INDEXMAKER_DATA_DIR"
    }
    if key is not None:
        env["INDEXMAKER_KEY"] = key
    return env


@contextlib.contextmanager
def serving(root: Path, settings: str) -> Iterator[Served]:
    """`indexmaker serve` on `settings` (TOML) in `root`, stopped with SIGTERM (exit 0)."""
    (root / "fast.toml").write_text(settings)
    log = root / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*CLI, "serve", "--config", str(root / "fast.toml"), "--port", "0", "--sim-deposits"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        # Up to 60 s: a second serve of this module starts beside the first on a loaded CI
        # machine (2 cores); 15 s ran out once. Ends as soon as it listens.
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start:\n" + log.read_text()
            found = re.search(r"fix_listening\W.*?(ws://127\.0\.0\.1:\d+/ws)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(0.05)
        yield Served(url, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            raise
    assert code == 0, log.read_text()[-2000:]
    assert "service_stopped" in log.read_text()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("served"), FAST_TOML) as instance:
        yield instance


def run(
    served: Served, *args: str, key: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--url", served.url],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(key),
    )


def invoice_fields(output: str) -> dict[str, Decimal]:
    values = {}
    for name, value in re.findall(r"^  (\w+): ([0-9.]+)$", output, re.MULTILINE):
        values[name] = Decimal(value)
    return values


def test_serve_deposit_order_wait_from_nothing_to_minted(served: Served, tmp_path: Path) -> None:
    key = ANVIL_TEST_KEYS[4]
    address = Signer(key).address
    watch_out = tmp_path / "watch.out"
    with watch_out.open("w") as sink:
        watcher = subprocess.Popen(
            [*CLI, "watch", "--url", served.url, "--duration", "25"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(key),
        )
    try:
        deadline = time.monotonic() + 10
        while "watching" not in watch_out.read_text():
            assert watcher.poll() is None and time.monotonic() < deadline, watch_out.read_text()
            time.sleep(0.05)
        deposit = run(served, "deposit", address, "1000")
        assert deposit.returncode == 0, deposit.stderr
        assert f"deposited 1000 USDC to {address}" in deposit.stdout
        order = run(served, "order", "SYL2", "buy", "1000", "--wait", "--id", "cli-1", key=key)
        assert order.returncode == 0, order.stderr
        out = order.stdout
        assert out.startswith("ACK  seq 1\n")
        assert "accepted cli-1: buy SYL2 for 1000 USDC" in out
        assert "fill cli-1: collateral ready" in out
        assert "minted " in out and " SYL2 for cli-1" in out
        inv = invoice_fields(out)
        assert inv["total_amount"] == Decimal(1000)
        assert inv["total_amount"] == (
            inv["amount_paid"] + inv["amount_remaining"] + inv["management_fee"]
        )
        assert abs(inv["amount_paid"] - inv["assets_value"] - inv["exchange_fee"]) <= Decimal(
            "0.000001"
        )
        # The watching session of the same wallet saw the same fills and the invoice live.
        deadline = time.monotonic() + 5
        while "minted" not in watch_out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=10) == 0
        seen = watch_out.read_text()
        fills = [line for line in out.splitlines() if line.startswith("fill cli-1")]
        for line in fills:
            assert line in seen
        assert f"minted {out.split('minted ')[1].splitlines()[0]}" in seen
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(timeout=5)


def test_serve_answers_the_query_api_where_its_log_says(served: Served) -> None:
    found = re.search(r"query_api_started\W.*?(http://127\.0\.0\.1:\d+)", served.log.read_text())
    assert found, served.log.read_text()
    base = found.group(1)
    address = Signer(ANVIL_TEST_KEYS[5]).address
    assert run(served, "deposit", address, "250").returncode == 0
    deadline = time.monotonic() + 10
    while True:  # the deposit reaches the engine through the simulated chain
        try:
            with urllib.request.urlopen(f"{base}/v1/collateral/42161/{address}", timeout=5) as r:
                position = json.loads(r.read())
        except urllib.error.HTTPError as error:  # 404 until the deposit is seen
            assert error.code == 404 and time.monotonic() < deadline
        else:
            if Decimal(position["deposited"]) == 250 or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    assert position["address"] == address.lower() and position["deposited"] == "250.000000"
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as r:
        assert json.loads(r.read())["openapi"] == "3.1.0"


@pytest.mark.parametrize("key", [ANVIL_TEST_KEYS[3], None])
def test_quote(served: Served, key: str | None) -> None:
    # Quotes are unsigned: no wallet key is needed (SPEC §5).
    result = run(served, "quote", "SY100", "1000", key=key)
    assert result.returncode == 0, result.stderr
    possible = re.search(r"quantity_possible:\s+([0-9.]+)", result.stdout)
    price = re.search(r"index_price:\s+([0-9.]+)", result.stdout)
    assert possible and price
    assert Decimal(possible.group(1)) > 0 and Decimal(price.group(1)) > 0


def test_a_sell_quote_is_told_in_index_units_with_its_expected_proceeds(served: Served) -> None:
    """Review (issue 12): `quote --side sell` printed the index units as USDC."""
    result = run(served, "quote", "SY100", "0.5", "--side", "sell")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.endswith(": sell 0.5 SY100") and "USDC" not in first, result.stdout
    proceeds = re.search(r"expected_proceeds:\s+([0-9.]+) USDC", result.stdout)
    price = re.search(r"index_price:\s+([0-9.]+)", result.stdout)
    assert proceeds and price, result.stdout
    assert 0 < Decimal(proceeds.group(1)) <= Decimal("0.5") * Decimal(price.group(1))
    buy = run(served, "quote", "SY100", "1000")
    assert buy.returncode == 0 and ": buy SY100 for 1000 USDC" in buy.stdout, buy.stdout
    assert "expected_proceeds" not in buy.stdout


def test_a_sell_quote_below_the_minimum_order_says_so(served: Served) -> None:
    """Review (issue 12 #2): a dust sell quote answered 0 proceeds without a word; it is
    refused with the reason a sell order of that size gets its NAK with."""
    result = run(served, "quote", "SY100", "0.000000000000000001", "--side", "sell")
    assert result.returncode == 1, result.stdout
    assert "amount 0.000000000000000001 index units is worth less than 0.000001 USDC" in (
        result.stderr
    )
    assert "below the minimum order of" in result.stderr and "expected_proceeds" not in (
        result.stdout
    )


def test_order_then_cancel(served: Served) -> None:
    key = ANVIL_TEST_KEYS[5]  # never funded: the order waits for collateral, so it cancels
    order = run(served, "order", "SY100", "buy", "300.25", "--id", "cx-1", key=key)
    assert order.returncode == 0, order.stderr
    assert "accepted cx-1" in order.stdout
    assert "waiting for collateral: need 300.25" in order.stdout  # not silent (SPEC §3)
    cancel = run(served, "cancel", "SY100", "cx-1", "300.25", key=key)
    assert cancel.returncode == 0, cancel.stderr
    assert "canceled 300.25 USDC of cx-1" in cancel.stdout
    again = run(served, "cancel", "SY100", "cx-1", "1", key=key)
    assert again.returncode == 1
    assert "indexmaker cancel: cancel of cx-1 rejected: no open order cx-1" in again.stderr
    duplicate = run(served, "order", "SY100", "buy", "5", "--id", "cx-1", key=key)
    assert duplicate.returncode == 1
    assert "order cx-1 rejected: duplicate client_order_id cx-1" in duplicate.stderr


def test_a_sell_order_is_told_in_index_units(served: Served) -> None:
    """A sell names index units (SPEC §3); review found it printed as `for 0.5 USDC`."""
    key = ANVIL_TEST_KEYS[8]
    order = run(served, "order", "SY100", "s", "0.5", "--id", "sx-1", key=key)
    assert order.returncode == 0, order.stderr
    assert "accepted sx-1: sell 0.5 SY100 (" in order.stdout, order.stdout
    assert "USDC" not in order.stdout.splitlines()[1], order.stdout


def test_error_messages_name_the_problem(served: Served, tmp_path: Path) -> None:
    key = ANVIL_TEST_KEYS[6]
    unknown = run(served, "order", "SYXX", "buy", "100", key=key)
    assert unknown.returncode == 1
    assert "rejected: unknown symbol SYXX" in unknown.stderr
    unknown_quote = run(served, "quote", "SYXX", "100", key=key)
    assert unknown_quote.returncode == 1 and "unknown symbol SYXX" in unknown_quote.stderr
    no_key = run(served, "order", "SY100", "buy", "100")
    assert no_key.returncode == 2
    assert "no wallet key" in no_key.stderr and "INDEXMAKER_KEY" in no_key.stderr
    assert "--key-file" in no_key.stderr
    bad_amount = run(served, "order", "SY100", "buy", "-5", key=key)
    assert bad_amount.returncode == 2
    assert "indexmaker order: amount: '-5' is not a plain decimal" in bad_amount.stderr
    bad_deposit = run(served, "deposit", "0x1234", "10")
    assert bad_deposit.returncode == 2 and "address:" in bad_deposit.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["order", "SY100", "up", "10", "--test-key", "1"], "order: side: 'up'"),
        (["order", "SY100", "buy", "1.0000001", "--test-key", "1"], "amount: more than 6"),
        (["order", "SY100", "buy", "NaN", "--test-key", "1"], "amount: 'NaN' is not a plain"),
        (["order", "SY100", "sell", "1." + "0" * 18 + "1", "--test-key", "1"], "more than 18"),
        (["order", "SY100", "sell", "1", "--approve"], "no wallet key"),
        (["order", "SY100", "buy", "10", "--approve", "--test-key", "1"], "--approve: only a sell"),
        (
            ["order", "SY100", "buy", "10", "--min-proceeds", "5", "--test-key", "1"],
            "--min-proceeds: only a sell",
        ),
        (
            ["order", "SY100", "sell", "1", "--min-proceeds", "0.0000001", "--test-key", "1"],
            "min_proceeds: more than 6",
        ),
        (
            [
                "order",
                "SY100",
                "sell",
                "1",
                "--approve",
                "--deployment",
                "/d.json",
                "--test-key",
                "1",
            ],
            "deployment: cannot read /d.json",
        ),
        (
            ["order", "SY100", "buy", "10", "--invoice-out", "/i.json", "--test-key", "1"],
            "--invoice-out: only with --wait",
        ),
        (["order", "SY 100", "buy", "10", "--test-key", "1"], "symbol: 1-32 letters"),
        (["order", "SY100", "buy", "10", "--id", 'a"b', "--test-key", "1"], "client_order_id:"),
        (["cancel", "SY100", "x", "0", "--test-key", "1"], "amount: must be greater than 0"),
        (["quote", "SY100", "1e3", "--test-key", "1"], "quote: amount: '1e3'"),
        (["deposit", "0xZZ", "10"], "deposit: address: expected 0x followed by 40 hex"),
        (["deposit", "0x" + "ab" * 20, "ten"], "deposit: amount: 'ten'"),
        (["deposit", "0x" + "ab" * 20, "1" + "0" * 16], "deposit: amount: too large (USDC below"),
        (
            ["deposit", "0x" + "ab" * 20, "1e70", "--chain", "8453", "--fund"],
            "deposit: amount: '1e70' is not a plain decimal",
        ),
        # Review (issue 11): an exponent form was taken as 1000 USDC.
        (["deposit", "0x" + "ab" * 20, "1e3"], "deposit: amount: '1e3' is not a plain decimal"),
        (["deposit", "0x" + "ab" * 20, "1E3", "--chain", "42161"], "amount: '1E3' is not a plain"),
        (["deposit", "0x" + "ab" * 20, "1.0000001"], "deposit: amount: more than 6 decimals"),
        (["watch", "--key-file", "/nonexistent/key"], "--key-file: No such file"),
    ],
)
def test_bad_input_is_refused_before_sending(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--url", "ws://127.0.0.1:9/ws"]) == 2
    assert message in capsys.readouterr().err


def test_key_file_and_unreachable_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    assert main(["quote", "SY100", "10", "--key-file", str(bad)]) == 2
    assert "expected a 32-byte hex private key" in capsys.readouterr().err
    good = tmp_path / "good.key"
    good.write_text(ANVIL_TEST_KEYS[7] + "\n")
    # Port 9 (discard) is closed on loopback: a clear connection error, exit 1.
    assert (
        main(["quote", "SY100", "10", "--key-file", str(good), "--url", "ws://127.0.0.1:9/ws"]) == 1
    )
    assert "cannot reach the service" in capsys.readouterr().err
    # Review (issue 11): `deposit` with serve down names the file that works without it.
    assert (
        main(
            [
                "deposit",
                "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                "10",
                "--url",
                "ws://127.0.0.1:9/ws",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "deposit: cannot reach the service at ws://127.0.0.1:9/ws" in err, err
    assert "--deployment <state_dir>/deployment.json" in err, err
    assert "--url or $INDEXMAKER_URL" in err, err  # a serve on another port


def test_a_reader_that_leaves_early_ends_the_command_quietly(served: Served) -> None:
    """Review (issue 11): `indexmaker … | head` printed a BrokenPipeError traceback. The
    pipe's reading end is closed before the command writes: its output meets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*CLI, "deposit", Signer(ANVIL_TEST_KEYS[5]).address, "1", "--url", served.url],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            env=_env(),
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""  # no traceback, no "Exception ignored … BrokenPipeError"
    assert result.returncode == 1


def test_a_sell_rejected_after_its_acceptance_ends_the_wait_with_the_reason(
    served: Served,
) -> None:
    """Review (issue 12): the rejection that follows the acceptance (the tokens to sell never
    reached custody) was missed, so `--wait` sat out its whole timeout."""
    key = ANVIL_TEST_KEYS[9]  # holds no SY100
    started = time.monotonic()
    order = run(
        served, "order", "SY100", "sell", "0.01", "--id", "sx-9", "--wait",
        "--wait-timeout", "25", key=key, timeout=40,
    )  # fmt: skip
    assert order.returncode == 1, order.stdout
    assert "accepted sx-9: sell 0.01 SY100" in order.stdout, order.stdout
    assert "indexmaker order: order sx-9 rejected: " in order.stderr, order.stderr
    assert "not moved into custody" in order.stderr, order.stderr
    assert "no RedemptionInvoice" not in order.stderr
    assert time.monotonic() - started < 20


def test_a_buy_rejected_after_its_acceptance_ends_the_wait_with_the_reason(
    tmp_path: Path,
) -> None:
    """Review (issue 12): `order … buy --wait` missed the rejection that follows the acceptance
    (collateral not ready within `[solver] collateral_timeout`) and sat out its whole timeout.
    A serve of its own: the module's instance keeps the default timeout for its cancels."""
    quick = FAST_TOML.replace("[solver]\n", "[solver]\ncollateral_timeout = 1\n")
    with serving(tmp_path, quick) as instance:
        started = time.monotonic()
        order = run(
            instance, "order", "SYL2", "buy", "50", "--id", "bx-1", "--wait",
            "--wait-timeout", "30", key=ANVIL_TEST_KEYS[7], timeout=45,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert order.returncode == 1, order.stdout + order.stderr
    assert "accepted bx-1: buy SYL2 for 50 USDC (waiting for collateral" in order.stdout
    assert "indexmaker order: order bx-1 rejected: collateral not ready within" in order.stderr
    assert "no MintInvoice" not in order.stderr
    assert elapsed < 20


def test_watch_shows_a_sell_s_redemption_fills(served: Served, tmp_path: Path) -> None:
    """Review (issue 12): `watch` showed no redemption events. Buy, then sell what was
    minted while a watcher of the same wallet looks on: both show the same fill lines (a
    floor no book pays keeps it waiting, so it can be cancelled; the invoice's printing is a
    unit test of cli_redeem.show_redemption_event)."""
    key = ANVIL_TEST_KEYS[6]
    assert run(served, "deposit", Signer(key).address, "200").returncode == 0
    buy = run(served, "order", "SYL2", "buy", "200", "--wait", "--id", "rt-b", key=key)
    assert buy.returncode == 0, buy.stderr
    minted = buy.stdout.split("minted ")[1].split()[0]
    watch_out = tmp_path / "watch.out"
    with watch_out.open("w") as sink:
        watcher = subprocess.Popen(
            [*CLI, "watch", "--url", served.url, "--duration", "40"],
            stdout=sink, stderr=subprocess.STDOUT, text=True, env=_env(key),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while "watching" not in watch_out.read_text():
            assert watcher.poll() is None and time.monotonic() < deadline, watch_out.read_text()
            time.sleep(0.05)
        sell = run(
            served, "order", "SYL2", "sell", minted, "--wait", "--wait-timeout", "4",
            "--min-proceeds", "1000000", "--id", "rt-s", key=key,
        )  # fmt: skip
        fills = [line for line in sell.stdout.splitlines() if line.startswith("redemption rt-s")]
        assert fills, sell.stdout + sell.stderr
        deadline = time.monotonic() + 10
        while fills[-1] not in watch_out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=10) == 0
        seen = watch_out.read_text()
        for line in fills:
            assert line in seen, seen
        # Its cancel names index units, not USDC (review, issue 12), and what it took.
        cancel = run(served, "cancel", "SYL2", "rt-s", minted, key=key)
        assert cancel.returncode == 0, cancel.stderr
        assert cancel.stdout == f"canceled rt-s: {minted} index units taken off the sell\n"
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(timeout=5)


def test_a_small_sell_completes_over_the_served_socket(served: Served) -> None:
    """Issue 12: a sell of ~60 USDC of SY100 (81 assets; every leg but the largest below
    the venue's 5 USDC) waited its TTL and was returned. Now the issuer takes those legs at
    the mid without fee (crossed on the invoice) and the sell is paid in one batch."""
    key = ANVIL_TEST_KEYS[2]
    assert run(served, "deposit", Signer(key).address, "60").returncode == 0
    buy = run(served, "order", "SY100", "buy", "60", "--wait", "--id", "sm-b", key=key)
    assert buy.returncode == 0, buy.stderr
    minted = buy.stdout.split("minted ")[1].split()[0]
    sell = run(
        served, "order", "SY100", "sell", minted, "--wait", "--wait-timeout", "20",
        "--id", "sm-s", key=key, timeout=40,
    )  # fmt: skip
    assert sell.returncode == 0, sell.stdout + sell.stderr
    assert f"redeemed {minted} SY100 for sm-s" in sell.stdout, sell.stdout
    inv = invoice_fields(sell.stdout)
    assert inv["returned_quantity"] == 0 and inv["net_paid"] > 0
    lots = [line for line in sell.stdout.splitlines() if line.startswith("  lot ")]
    crossed = [line for line in lots if line.endswith("(crossed)")]
    assert len({line.split()[1] for line in crossed}) == 80, sell.stdout  # assets absorbed
    assert all(", fee 0.000000, " in line for line in crossed), crossed[:3]
    assert len(crossed) < len(lots)  # the largest leg sold at the venue, with its fee


def test_order_help_names_usdc_for_a_buy_and_index_units_for_a_sell(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("order", "cancel"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "index units" in text and "USDC" in text, text
    with pytest.raises(SystemExit):
        main(["quote", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a sell: index units" in text, text
    with pytest.raises(SystemExit):
        main(["order", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the least USDC to be paid" in text and "expected withdrawal fee" in text, text

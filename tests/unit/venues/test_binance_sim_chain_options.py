"""exchange-sim's trading-chain options: each bad value refused naming the option."""

from __future__ import annotations

import argparse

import pytest

from indexmaker.venues.binance_sim.cli import add_arguments, config_from

USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_chain_watch_is_off_by_default_and_on_with_rpc_and_token() -> None:
    assert config_from(_parse()).chain is None
    chain = config_from(_parse("--chain-rpc", "http://127.0.0.1:8546", "--chain-usdc", USDC)).chain
    assert chain is not None
    assert (chain.rpc_url, chain.token, chain.network, chain.confirmations) == (
        "http://127.0.0.1:8546",
        USDC,
        "BASE",
        1,
    )


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("--chain-rpc", "http://127.0.0.1:8546"), "--chain-rpc, --chain-usdc"),
        (("--chain-usdc", USDC), "--chain-rpc, --chain-usdc"),
        (("--chain-rpc", "http://x", "--chain-usdc", "0x12"), "--chain-usdc"),
        (("--chain-rpc", "ws://x", "--chain-usdc", USDC), "--chain-rpc"),
        (
            ("--chain-rpc", "http://x", "--chain-usdc", USDC, "--chain-confirmations", "0"),
            "--chain-confirmations",
        ),
        (
            ("--chain-rpc", "http://x", "--chain-usdc", USDC, "--chain-network", "MOON"),
            "--chain-network",
        ),
    ],
)
def test_bad_chain_options_are_refused_naming_the_option(
    argv: tuple[str, ...], option: str
) -> None:
    with pytest.raises(ValueError) as error:
        config_from(_parse(*argv))
    assert str(error.value).startswith(option + ":")

"""`indexmaker deposit --chain` and `indexmaker verify-invoice` against two real anvils."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from indexmaker.app.chain_wiring import LocalChains
from indexmaker.app.cli import main
from indexmaker.app.cli_client import ANVIL_TEST_KEYS
from indexmaker.chain import artifacts
from indexmaker.chain.connector import ChainSettings, Web3ChainPort
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.core.chain_events import MintConfirmed
from indexmaker.core.events import CollateralPosition, MintIndex, MintInvoice
from indexmaker.core.ids import ClientOrderId, Designation, PaymentId, Symbol, client_key
from indexmaker.engine.invoices import invoice_hash
from indexmaker.server.encoding import response_body

from .path_harness import CLIENT_KEYS, INDEX

CLIENT = Account.from_key(CLIENT_KEYS[0])
UNFUNDED = Account.from_key(ANVIL_TEST_KEYS[8])  # holds ETH, no local USDC


@pytest.fixture(scope="module")
def deployment(chains: LocalChains, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chains' addresses in deploy.py's file shape."""
    path = tmp_path_factory.mktemp("deploy") / "deployment.json"
    sections = {
        str(cid): {"rpc_url": chains.url(cid), **chains.sections[cid]}
        for cid in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)
    }
    path.write_text(json.dumps({"chains": sections}))
    return path


def _usdc_units(chains: LocalChains, chain_id: int, holder: str) -> int:
    w3 = Web3(Web3.HTTPProvider(chains.url(chain_id)))
    abi = artifacts.ours("LocalUSDC")["abi"]
    usdc = w3.eth.contract(address=chains.sections[chain_id]["usdc"], abi=abi)
    return int(usdc.functions.balanceOf(Web3.to_checksum_address(holder)).call())


@pytest.mark.parametrize("chain_id", [SOURCE_CHAIN_ID, TRADING_CHAIN_ID])
def test_deposit_on_chain_moves_usdc_into_custody(
    chains: LocalChains, deployment: Path, chain_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    custody = chains.sections[chain_id]["custody"]
    before = _usdc_units(chains, chain_id, custody), _usdc_units(chains, chain_id, CLIENT.address)
    argv = ["deposit", CLIENT.address.lower(), "12.5", "--chain", str(chain_id)]
    assert main([*argv, "--deployment", str(deployment)]) == 0
    out = capsys.readouterr().out
    after = _usdc_units(chains, chain_id, custody), _usdc_units(chains, chain_id, CLIENT.address)
    assert after == (before[0] + 12_500_000, before[1] - 12_500_000)
    tx = out.split(" tx ")[1].split()[0]
    receipt = Web3(Web3.HTTPProvider(chains.url(chain_id))).eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1 and receipt["to"] == custody
    assert f"on chain {chain_id}" in out
    assert f"wallet {Decimal(after[1]).scaleb(-6)} USDC" in out


def test_deposit_on_chain_refusals(
    chains: LocalChains, deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    custody = chains.sections[SOURCE_CHAIN_ID]["custody"]
    held = _usdc_units(chains, SOURCE_CHAIN_ID, custody)
    base = ["--chain", str(SOURCE_CHAIN_ID), "--deployment", str(deployment)]
    cases = [
        ([CLIENT.address, "1.0000001", *base], 2, "amount: more than 6 decimals"),
        ([CLIENT.address, "-3", *base], 2, "amount: '-3' is not a plain decimal"),
        (["0x" + "11" * 20, "1", *base], 2, "address: no local key for 0x1111"),
        ([UNFUNDED.address, "5", *base], 1, "is below 5 (--fund mints local USDC first)"),
    ]
    for args, code, message in cases:
        assert main(["deposit", *args]) == code
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["deposit", CLIENT.address, "1", "--chain", "1"])
    assert exited.value.code == 2
    assert "argument --chain: invalid choice: 1" in capsys.readouterr().err
    assert _usdc_units(chains, SOURCE_CHAIN_ID, custody) == held  # nothing moved
    # --fund mints the shortfall first (local USDC), then deposits.
    assert main(["deposit", UNFUNDED.address, "5", "--fund", *base]) == 0
    assert _usdc_units(chains, SOURCE_CHAIN_ID, custody) == held + 5_000_000
    assert _usdc_units(chains, SOURCE_CHAIN_ID, UNFUNDED.address) == 0


async def _minted_invoice(chains: LocalChains, payment_id: str) -> dict[str, Any]:
    """A mint through the service's chain port, and its invoice body as the service sends it."""
    client = client_key(TRADING_CHAIN_ID, CLIENT.address)
    terms = MintInvoice(
        ClientOrderId(f"order-{payment_id}"),
        PaymentId(payment_id),
        Symbol(INDEX),
        Decimal("0.123456789012345678"),
        Decimal(100),
        Decimal("99.5"),
        Decimal("0.4"),
        Decimal("0.1"),
        Decimal("99.4"),
        Decimal("0.1"),
        Decimal(1),
        (),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    digest = invoice_hash(terms)
    section = chains.sections[TRADING_CHAIN_ID]
    settings = ChainSettings(
        chain_id=TRADING_CHAIN_ID,
        rpc_url=chains.url(TRADING_CHAIN_ID),
        custody=section["custody"],
        usdc=section["usdc"],
        designation=Designation("EVM:BASE:USDC"),
        index_tokens=section["index_tokens"],
    )
    port = Web3ChainPort(settings, chains.issuer)
    confirmed: list[Any] = []

    async def sink(event: Any) -> None:
        confirmed.append(event)

    port._sink = sink  # commands only: no log following
    await port.mint(
        MintIndex(terms.payment_id, client, terms.symbol, terms.filled_quantity, digest)
    )
    assert isinstance(confirmed[0], MintConfirmed)
    position = CollateralPosition(client, Decimal(0), Decimal("0.4"), Decimal(0), Decimal("99.5"))
    invoice = MintInvoice(
        **{
            **{f: getattr(terms, f) for f in terms.__dataclass_fields__},
            "position": position,
            "invoice_hash": digest,
            "mint_tx_hash": confirmed[0].tx_hash,
        }
    )
    return response_body(invoice)[2]


async def test_verify_invoice_matches_the_chain_and_names_each_mismatch(
    chains: LocalChains, deployment: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = await _minted_invoice(chains, "verify-1")
    other = await _minted_invoice(chains, "verify-2")

    def verify(content: Any, *extra: str) -> tuple[int, str, str]:
        path = tmp_path / "invoice.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        code = main(["verify-invoice", str(path), "--deployment", str(deployment), *extra])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = verify(body)
    assert code == 0
    assert f"mint tx {body['mint_tx_hash']} succeeded" in out
    assert f"minted 0.123456789012345678 {INDEX}" in out
    assert body["invoice_hash"] in out
    # A message envelope and a list (picked by --id) are read as well.
    assert verify([{"body": other}, {"body": body}], "--id", "order-verify-1")[0] == 0
    wrong_client = Account.from_key(ANVIL_TEST_KEYS[9]).address
    mismatches = [
        ({**body, "filled_quantity": "0.123456789012345679"}, "filled_quantity: file"),
        ({**body, "invoice_hash": "0x" + "ab" * 32}, "invoice_hash: file 0xabab"),
        ({**body, "payment_id": "verify-2"}, "payment_id: 'verify-2' is not the order id"),
        ({**body, "symbol": "SY100"}, "symbol: SY100 is token"),
        ({**body, "mint_tx_hash": other["mint_tx_hash"]}, "payment_id: 'verify-1'"),
        ({**body, "mint_tx_hash": "0x" + "cd" * 32}, "mint_tx_hash: no mined transaction"),
        ({**body, "position": {**body["position"], "address": wrong_client}}, "recipient: file"),
    ]
    for changed, message in mismatches:
        code, _, err = verify(changed)
        assert (code, message in err) == (1, True), (message, err)
        assert "mismatch: " in err
    # Edited after minting: every field checked above still matches the chain, but the file's
    # own terms no longer hash to what custody recorded.
    assert "recomputed from the file" in out
    for field, value in (("amount_paid", "99.6"), ("exchange_fee", "0"), ("lots", [{}])):
        code, _, err = verify({**body, field: value})
        assert code == 1, err
        assert "mismatch: invoice: the file's terms hash to 0x" in err
        assert f"custody records {body['invoice_hash']}: the invoice was changed" in err
    # Fields fixed only at delivery are not terms: changing them changes nothing.
    assert verify({**body, "timestamp": "2030-01-01T00:00:00.000Z"})[0] == 0
    bad_inputs = [
        ("{not json", "not JSON"),
        ({k: v for k, v in body.items() if k != "mint_tx_hash"}, "invoice.mint_tx_hash: missing"),
        ({**body, "invoice_hash": "0x12"}, "invoice.invoice_hash: missing or malformed"),
        ({**body, "filled_quantity": "lots"}, "invoice.filled_quantity: not an index quantity"),
        ({k: v for k, v in body.items() if k != "position"}, "pass --client ADDRESS"),
        ({k: v for k, v in body.items() if k != "lots"}, "invoice.lots: missing (a term"),
        ([body, other], "holds 2 matching invoices: pass --id"),
    ]
    for content, message in bad_inputs:
        code, _, err = verify(content)
        assert (code, message in err) == (2, True), (message, err)
    # --client stands in for a missing position; a wrong one is a mismatch.
    no_position = {k: v for k, v in body.items() if k != "position"}
    assert verify(no_position, "--client", CLIENT.address)[0] == 0
    assert verify(no_position, "--client", wrong_client)[0] == 1

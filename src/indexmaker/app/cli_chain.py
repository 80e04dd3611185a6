"""`indexmaker` commands that talk to the chains themselves (SPEC §7, issue 11):

    indexmaker deposit ADDRESS AMOUNT [--chain 42161|8453] [--fund] [--deployment FILE]
    indexmaker verify-invoice FILE [--id CLIENT_ORDER_ID] [--client ADDRESS] [--deployment FILE]

`deposit --chain` makes the real deposit into custody: approve, then `Custody.deposit`, signed
by the local test key of ADDRESS (anvil's public accounts, or INDEXMAKER_KEY when its address
is ADDRESS); `--fund` first mints the missing local USDC (LocalUSDC's deployer, local chains
only). Where it deposits: app/cli_deposit.py (a `serve` on local chains names them in GET
/info; a service on the simulated chain gets its POST /sim/deposit).

`verify-invoice` checks a mint invoice as the service emits it (the MintInvoice body: JSON
object, a {"body": …} message, or a list of them) against the trading chain: the mint
transaction exists and succeeded, its custody `IndexMinted` log names keccak256(payment_id),
the symbol's index token, the recipient (`position.address` or `--client`) and
filled_quantity × 10^18, custody's `invoiceHashOf` is the file's `invoice_hash`, and the hash
recomputed from the file's own terms (core/invoice_terms.py, the encoding hashed at the mint)
is that too: a file edited after minting is refused.

The file may also be an item of the query API's `/v1/invoices` (its `body` is the MintInvoice
body as sent), a whole page of them (`{"items": [...]}`, pick one with `--id`) or an order's
`/v1/orders/{chain}/{address}/{id}` answer, and the saved `order --wait --invoice-out FILE`.

Addresses and RPC URLs of `verify-invoice` come from `--deployment FILE`, else from GET /info
of the service at `--url` (a `serve` on local chains names them), else from `make deploy`'s
.chains/deployment.json (app/cli_redeem.py `trading_section`, as `order --approve`).
Exit status: 0 done / all match, 1 failed or a mismatch (the line names the field), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexmaker.app.cli_args import seconds_arg
from indexmaker.app.cli_client import ANVIL_TEST_KEYS, KEY_ENV, URL_ENV, CliError

# web3 and eth_account are imported where used: every other command starts without them.
if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

TRADING_CHAIN_ID = 8453
CHAIN_IDS = (42161, TRADING_CHAIN_ID)
_HASH_RE = re.compile(r"0x[0-9a-fA-F]{64}")


def add_chain_commands(commands: Any) -> None:
    """Register `verify-invoice`, and `--chain`/`--fund`/`--deployment` on `deposit`."""
    from indexmaker.chain.anvil import RUN_DIR

    default = RUN_DIR / "deployment.json"
    deposit = commands.choices["deposit"]
    deposit.add_argument(
        "--chain",
        type=int,
        choices=CHAIN_IDS,
        help="deposit on this chain (default: the service's, GET /info's chain_id)",
    )
    deposit.add_argument(
        "--fund", action="store_true", help="with --chain: mint the missing local USDC first"
    )
    verify = commands.add_parser("verify-invoice", help="check a mint invoice against the chain")
    verify.add_argument("file", type=Path)
    verify.add_argument("--id", dest="client_order_id", help="which invoice of a list")
    verify.add_argument("--client", help="recipient (default: the invoice's position.address)")
    verify.add_argument(
        "--deployment",
        type=Path,
        help=f"addresses (default: the chains GET /info of --url names, else {default})",
    )
    verify.add_argument("--url", help=f"the service's FIX endpoint (default ${URL_ENV})")
    verify.add_argument(
        "--timeout", type=seconds_arg, default=10.0, help="seconds GET /info may take"
    )
    deposit.add_argument(
        "--deployment",
        type=Path,
        help=f"addresses (default: the chains GET /info of --url names, else {default})",
    )


def wants_chain(args: argparse.Namespace) -> bool:
    return args.command in ("verify-invoice", "deposit")


def run_chain_command(args: argparse.Namespace) -> int:
    """Run `verify-invoice` or `deposit --chain`; the exit status (errors on stderr)."""
    try:
        if args.command == "verify-invoice":
            from indexmaker.app.cli_redeem import trading_section

            def section() -> dict[str, Any]:
                return trading_section(args)[0]

            print(verify_invoice_file(args.file, section, args.client_order_id, args.client))
        else:
            from indexmaker.app.cli_deposit import run_deposit

            return run_deposit(args)
    except CliError as error:
        print(f"indexmaker {args.command}: {error}", file=sys.stderr)
        return error.code
    return 0


def load_section(path: Path, chain_id: int) -> dict[str, Any]:
    """Chain `chain_id`'s section of the deployment file (deploy.py's shape); CliError 2."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"deployment: cannot read {path} ({exc.strerror}): make deploy", 2) from None
    except ValueError as exc:
        raise CliError(f"deployment: {path} is not JSON ({exc})", 2) from None
    return usable_section(data, chain_id, str(path))


def usable_section(data: Any, chain_id: int, source: str) -> dict[str, Any]:
    """`data["chains"][chain_id]` with its rpc_url, custody and usdc (deploy.py's shape, or
    GET /info's "chains"); CliError 2 naming `source`."""
    try:
        section = data["chains"][str(chain_id)]
        for name in ("rpc_url", "custody", "usdc"):
            if not isinstance(section.get(name), str):
                raise KeyError(name)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CliError(f"deployment: {source} has no usable chain {chain_id} ({exc})", 2) from None
    return dict(section)


def _web3(section: dict[str, Any], signer: LocalAccount | None = None) -> Any:
    from web3 import Web3

    from indexmaker.chain.deploy import connect

    if signer is not None:
        w3 = connect(section["rpc_url"], signer)
    else:
        w3 = Web3(Web3.HTTPProvider(section["rpc_url"], request_kwargs={"timeout": 30}))
    try:
        w3.eth.chain_id  # noqa: B018 -- reachability check before anything is sent
    except Exception as exc:
        raise CliError(f"chain unreachable at {section['rpc_url']}: {exc}") from None
    return w3


def _contract(w3: Any, address: str, name: str) -> Any:
    from web3 import Web3

    from indexmaker.chain import artifacts

    abi = artifacts.ours(name)["abi"]
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)


# ---------------------------------------------------------------- deposit --chain


def usdc_amount(text: str) -> Decimal:
    """AMOUNT of `deposit` in USDC: a plain decimal (digits, optional '.' fraction: no sign
    or exponent, `1e3` is refused as the wire refuses it, server/wire_values.py) > 0, at most
    6 decimals, below core/money.py's USDC_LIMIT (10^15: what the route carries exactly);
    CliError 2 `amount: …`."""
    from indexmaker.core.money import USDC_DECIMALS, USDC_LIMIT
    from indexmaker.server.wire_values import check_amount

    try:
        amount = check_amount("amount", text, USDC_DECIMALS)
    except ValueError as error:
        raise CliError(f"{error} (USDC below {USDC_LIMIT:f}, e.g. 1000 or 250.5)", 2) from None
    if amount >= USDC_LIMIT:  # 15 integer digits at most already keep it below; said anyway
        raise CliError(f"amount: {text!r} must be below {USDC_LIMIT:f} (USDC)", 2)
    return amount


def _depositor(address: str) -> LocalAccount:
    """The local key of `address`: INDEXMAKER_KEY if it is that address, else anvil's."""
    from eth_account import Account

    from_env = os.environ.get(KEY_ENV)
    keys = ([from_env] if from_env else []) + list(ANVIL_TEST_KEYS)
    for key in keys:
        account: LocalAccount = Account.from_key(key)
        if account.address.lower() == address.lower():
            return account
    raise CliError(
        f"address: no local key for {address} (anvil's test accounts 0-9, or {KEY_ENV})", 2
    )


def deposit_on_chain(args: argparse.Namespace, section: dict[str, Any], chain_id: int) -> str:
    """Approve and deposit AMOUNT USDC into custody on `chain_id` (its deployment `section`:
    rpc_url, custody, usdc); the summary lines."""
    from eth_account import Account
    from web3 import Web3
    from web3.logs import DISCARD

    from indexmaker.chain.deploy import ANVIL_KEY_0, DEPLOYER_KEY_ENV, DeployError, transact
    from indexmaker.core.money import units_to_usdc, usdc_to_units
    from indexmaker.server.wire_values import check_address

    try:
        check_address(args.address)
    except ValueError as error:
        raise CliError(str(error), 2) from None
    units = usdc_to_units(usdc_amount(args.amount))
    account = _depositor(args.address)
    w3 = _web3(section, account)
    usdc = _contract(w3, section["usdc"], "LocalUSDC")
    custody = _contract(w3, section["custody"], "Custody")
    try:
        held = int(usdc.functions.balanceOf(account.address).call())
        if held < units:
            if not args.fund:
                raise CliError(
                    f"balance {units_to_usdc(held)} USDC of {account.address} is below "
                    f"{args.amount} (--fund mints local USDC first)"
                )
            minter: LocalAccount = Account.from_key(os.environ.get(DEPLOYER_KEY_ENV) or ANVIL_KEY_0)
            mw3 = _web3(section, minter)
            local = _contract(mw3, section["usdc"], "LocalUSDC")
            transact(mw3, local.functions.mint(account.address, units - held), "mint USDC")
        spender = Web3.to_checksum_address(section["custody"])
        if int(usdc.functions.allowance(account.address, spender).call()) < units:
            transact(w3, usdc.functions.approve(spender, units), "approve custody")
        receipt = transact(w3, custody.functions.deposit(units), "deposit")
    except DeployError as exc:
        raise CliError(str(exc)) from None
    events = custody.events.Deposit().process_receipt(receipt, errors=DISCARD)
    sequence = int(events[0]["args"]["sequence"]) if events else 0
    wallet = units_to_usdc(int(usdc.functions.balanceOf(account.address).call()))
    held_by_custody = units_to_usdc(int(usdc.functions.balanceOf(spender).call()))
    return (
        f"deposited {units_to_usdc(units)} USDC from {account.address} into custody {spender} "
        f"on chain {chain_id} (deposit #{sequence})\n"
        f"  tx {receipt['transactionHash'].to_0x_hex()} in block {receipt['blockNumber']}\n"
        f"  balances: wallet {wallet} USDC, custody {held_by_custody} USDC"
    )


# ---------------------------------------------------------------- verify-invoice


def _pick_invoice(data: Any, client_order_id: str | None) -> dict[str, Any]:
    """The one MintInvoice body in `data`: a body, a {"body": …} message or query API item,
    a list or page ({"items": […]}) of them, or an order's detail ({"invoice": …})."""
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    elif isinstance(data, dict) and "invoice" in data and "payment_id" not in data:
        if not isinstance(data["invoice"], dict):
            raise CliError("invoice: the order has no mint invoice (not minted yet?)", 2)
        data = data["invoice"]
    items = data if isinstance(data, list) else [data]
    bodies = [i.get("body", i) if isinstance(i, dict) else i for i in items]
    if not all(isinstance(b, dict) for b in bodies):
        raise CliError("invoice: expected a JSON object (or a list of them)", 2)
    if client_order_id is not None:
        bodies = [b for b in bodies if b.get("client_order_id") == client_order_id]
    if len(bodies) != 1:
        raise CliError(f"invoice: the file holds {len(bodies)} matching invoices: pass --id", 2)
    body: dict[str, Any] = bodies[0]
    return body


def _field(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or (pattern and not pattern.fullmatch(value)):
        hint = " (an invoice minted on the simulated chain has none)" if pattern else ""
        raise CliError(f"invoice.{name}: missing or malformed: {value!r}{hint}", 2)
    return value


def _recipient(body: dict[str, Any], client: str | None) -> str:
    from indexmaker.server.wire_values import check_address

    position = body.get("position")
    value = client or (position.get("address") if isinstance(position, dict) else None)
    if not isinstance(value, str):
        raise CliError("invoice.position.address: missing: pass --client ADDRESS", 2)
    try:
        return check_address(value)
    except ValueError as error:
        raise CliError(f"recipient: {error}", 2) from None


def verify_invoice_file(
    path: Path,
    trading: Callable[[], dict[str, Any]],
    client_order_id: str | None,
    client: str | None,
) -> str:
    """Check the invoice in `path` against the trading chain, whose deployment section
    `trading()` gives once the file is read; the summary (CliError 1 naming the first field
    that differs, CliError 2 on bad input)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}", 2) from None
    except ValueError as exc:
        raise CliError(f"{path}: not JSON ({exc})", 2) from None
    body = _pick_invoice(data, client_order_id)
    payment_id = _field(body, "payment_id")
    symbol = _field(body, "symbol")
    tx_hash = _field(body, "mint_tx_hash", _HASH_RE)
    file_hash = _field(body, "invoice_hash", _HASH_RE).lower()
    from indexmaker.core.money import index_to_units

    text = _field(body, "filled_quantity")
    try:
        units = index_to_units(Decimal(text))
    except (InvalidOperation, ValueError):
        raise CliError(f"invoice.filled_quantity: not an index quantity: {text!r}", 2) from None
    recipient = _recipient(body, client)
    from indexmaker.core.invoice_terms import terms_hash

    try:
        recomputed = terms_hash(body)
    except KeyError as missing:
        raise CliError(f"invoice.{missing.args[0]}: missing (a term the hash covers)", 2) from None
    section = trading()
    w3 = _web3(section)
    summary = _check_on_chain(w3, section, payment_id, symbol, tx_hash, file_hash, units, recipient)
    if recomputed != file_hash:  # custody records file_hash (checked above)
        raise CliError(
            f"mismatch: invoice: the file's terms hash to {recomputed}, custody records "
            f"{file_hash}: the invoice was changed after minting"
        )
    return summary + "\n  the file's terms hash to it (recomputed from the file)"


def _check_on_chain(
    w3: Any,
    section: dict[str, Any],
    payment_id: str,
    symbol: str,
    tx_hash: str,
    file_hash: str,
    units: int,
    recipient: str,
) -> str:
    from web3 import Web3
    from web3.exceptions import TransactionNotFound
    from web3.logs import DISCARD

    from indexmaker.core.money import units_to_index

    def mismatch(field: str, detail: str) -> CliError:
        return CliError(f"mismatch: {field}: {detail}")

    try:
        receipt = w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        raise mismatch("mint_tx_hash", f"no mined transaction {tx_hash} on chain 8453") from None
    if receipt["status"] != 1:
        raise mismatch("mint_tx_hash", f"transaction {tx_hash} failed (status 0)")
    custody = _contract(w3, section["custody"], "Custody")
    logs = [
        e
        for e in custody.events.IndexMinted().process_receipt(receipt, errors=DISCARD)
        if e["address"].lower() == section["custody"].lower()
    ]
    if len(logs) != 1:
        raise mismatch("mint_tx_hash", f"{tx_hash} is not a custody mint ({len(logs)} mints)")
    minted = logs[0]["args"]
    order_id = bytes(Web3.keccak(text=payment_id))
    if bytes(minted["orderId"]) != order_id:
        raise mismatch("payment_id", f"{payment_id!r} is not the order id this tx minted")
    token = section.get("index_tokens", {}).get(symbol, "")
    if str(minted["token"]).lower() != str(token).lower():
        raise mismatch(
            "symbol", f"{symbol} is token {token or 'unknown'}, tx minted {minted['token']}"
        )
    if str(minted["to"]).lower() != recipient:
        raise mismatch("recipient", f"file {recipient}, chain {str(minted['to']).lower()}")
    if int(minted["amount"]) != units:
        chain_qty = units_to_index(int(minted["amount"]))
        raise mismatch("filled_quantity", f"file {units_to_index(units)}, chain {chain_qty}")
    recorded = "0x" + bytes(custody.functions.invoiceHashOf(order_id).call()).hex()
    if recorded != file_hash or "0x" + bytes(minted["invoiceHash"]).hex() != file_hash:
        raise mismatch("invoice_hash", f"file {file_hash}, custody records {recorded}")
    return (
        f"invoice {payment_id} verified on chain 8453: mint tx {tx_hash} succeeded in block "
        f"{receipt['blockNumber']}\n"
        f"  minted {units_to_index(units)} {symbol} (token {token}) to {recipient}\n"
        f"  invoice hash {file_hash} recorded by custody {section['custody']}"
    )

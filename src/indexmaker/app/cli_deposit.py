"""Where `indexmaker deposit ADDRESS AMOUNT [--chain 42161|8453] [--deployment FILE]`
deposits (issue 11):

- `--deployment FILE`: on that deployment's chain `--chain` (default 42161), on chain.
- else the service at `--url` (GET /info): a `serve` on local chains (the default) names
  each chain's RPC URL, custody and USDC under "chains": the deposit is made there, on
  `--chain` or the service's `chain_id` (the chain orders name by default), from ADDRESS's
  local test key (anvil's public client accounts are funded when serve deploys);
- a service without chains there (the simulated chain): its POST /sim/deposit (app/cli_client.py),
  or with `--chain`, `make deploy`'s `.chains/deployment.json`.

The on-chain deposit itself is app/cli_chain.py's `deposit_on_chain`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from indexmaker.app.cli_chain import deposit_on_chain, load_section, usable_section, usdc_amount
from indexmaker.app.cli_client import CliError, run_client_command, service_url

INFO_TIMEOUT_S = 5.0


def run_deposit(args: argparse.Namespace) -> int:
    """The deposit's exit status; CliError (printed by the caller) on failure."""
    from indexmaker.chain.anvil import RUN_DIR
    from indexmaker.server.client_requests import DEFAULT_CHAIN_ID
    from indexmaker.server.wire_values import check_address

    usdc_amount(args.amount)  # bad input is refused before anything is read or sent
    try:
        check_address(args.address)
    except ValueError as error:
        raise CliError(str(error), code=2) from None
    if args.deployment is not None:
        chain_id = args.chain or DEFAULT_CHAIN_ID
        section = load_section(args.deployment, chain_id)
    else:
        info = server_info(args)
        if info is not None and "chains" in info:
            chain_id = args.chain or int(info.get("chain_id", DEFAULT_CHAIN_ID))
            section = usable_section(info, chain_id, f"GET /info of {args.url}")
        elif info is None and args.chain is None:
            # A stopped serve keeps its chains' addresses (app/kept_chains.py): say where.
            raise CliError(
                f"cannot reach the service at {args.url} (GET /info); is it running (on "
                "another port: --url or $INDEXMAKER_URL)? Without it, name the chains: "
                "--deployment <state_dir>/deployment.json (serve's "
                "[chain] state_dir, default <data_dir>/anvil/), or --chain 42161|8453 for "
                "make deploy's .chains/deployment.json"
            )
        elif args.chain is None:
            return run_client_command(args)  # the simulated chain (or its error)
        else:
            chain_id = args.chain
            section = load_section(RUN_DIR / "deployment.json", chain_id)
    print(deposit_on_chain(args, section, chain_id))
    return 0


def server_info(args: argparse.Namespace) -> dict[str, Any] | None:
    """GET /info of the service at --url; None when it does not answer."""
    import aiohttp

    from indexmaker.server.client_http import fetch_server_info

    url = args.url = service_url(args)
    try:
        return asyncio.run(fetch_server_info(url, timeout=min(args.timeout, INFO_TIMEOUT_S)))
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        return None

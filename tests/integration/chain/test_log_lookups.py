"""Bounded log look-ups (chain/logs.py, issue 11) on a real anvil: a log many chunks behind
the head is found from its lower bound, where a window of the same size back from the head
finds nothing; a search that finds nothing reads exactly the chunks from its lower bound to
the head (counted eth_getLogs requests), and polling again reads only the new blocks; the
first block at or after a time, by binary search on block timestamps."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3
from web3.types import RPCEndpoint, RPCResponse

from indexmaker.chain import artifacts
from indexmaker.chain.deploy import TRADING_CHAIN_ID, deploy_artifact
from indexmaker.chain.logs import LogScan, block_at_time, event_topics

from .conftest import as_account, send

CHUNK = 20
TRANSFER = bytes(Web3.keccak(text="Transfer(address,address,uint256)"))


class CountingProvider(AsyncHTTPProvider):
    """web3's HTTP provider to the real node, counting the requests it makes by method."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.counts: Counter[str] = Counter()

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.counts[method] += 1
        return await super().make_request(method, params)


class Chain:
    def __init__(self, url: str, token: Any, w3: Web3) -> None:
        self.url, self.token, self.w3 = url, token, w3
        self.provider = CountingProvider(url)
        self.aw3: AsyncWeb3[Any] = AsyncWeb3(self.provider)

    def mine(self, blocks: int) -> None:
        self.w3.provider.make_request(RPCEndpoint("anvil_mine"), [blocks])

    def mint(self, to: str, amount: int) -> int:
        """Mint (a Transfer log from 0x0 to `to`); the block it is in."""
        receipt = send(self.w3, self.token.functions.mint(to, amount))
        assert receipt["status"] == 1
        return int(receipt["blockNumber"])

    def scan(self, to: str, from_block: int) -> LogScan:
        return LogScan(self.aw3, self.token.address, _to(to), from_block, CHUNK)

    def requests(self) -> int:
        return self.provider.counts["eth_getLogs"]


@pytest.fixture(scope="module")
def chain(start_node: Any, deployer: LocalAccount) -> Chain:
    node = start_node(TRADING_CHAIN_ID)
    w3 = as_account(node.url, deployer)
    token = deploy_artifact(w3, artifacts.ours("LocalUSDC"), deployer.address)
    return Chain(node.url, token, w3)


def _to(address: str) -> list[Any]:
    """The topics of a Transfer to `address`."""
    return event_topics(TRANSFER, [None, bytes.fromhex("00" * 12 + address[2:])])


def _chunks(first: int, last: int) -> int:
    return math.ceil((last - first + 1) / CHUNK)


async def test_a_log_many_chunks_back_is_found_from_its_lower_bound(
    chain: Chain, stranger: LocalAccount
) -> None:
    low = chain.w3.eth.block_number  # recorded when the step began
    chain.mine(7)
    made = chain.mint(stranger.address, 5)
    chain.mine(4 * CHUNK + 3)  # the hop stopped for a while
    head = chain.w3.eth.block_number
    # What a fixed window of CHUNK blocks back from the head (the old look-back) sees: nothing.
    window = chain.w3.eth.get_logs(
        {"address": chain.token.address, "fromBlock": head - CHUNK, "toBlock": head,
         "topics": _to(stranger.address)}
    )  # fmt: skip
    assert window == []
    before = chain.requests()
    log = await chain.scan(stranger.address, low).first()
    assert log is not None and int(log["blockNumber"]) == made
    assert chain.requests() - before == _chunks(low, made)  # only up to its chunk
    # From the head backwards (a log known to exist): the chunks from the head down to it.
    before = chain.requests()
    newest = await chain.scan(stranger.address, low).newest()
    assert newest is not None and int(newest["blockNumber"]) == made
    assert chain.requests() - before == _chunks(made, head)


async def test_a_search_that_finds_nothing_reads_from_its_lower_bound_only(
    chain: Chain, client: LocalAccount, stranger: LocalAccount
) -> None:
    chain.mint(client.address, 1)  # before the lower bound: not this search's
    chain.mine(3 * CHUNK)
    low = chain.w3.eth.block_number + 1
    chain.mine(2 * CHUNK + 5)
    chain.mint(stranger.address, 1)  # another recipient's log: not matched
    head = chain.w3.eth.block_number
    scan = chain.scan(client.address, low)
    before = chain.requests()
    assert await scan.first() is None
    assert chain.requests() - before == _chunks(low, head) == 3
    assert scan.cursor == head + 1
    # Polled again after more blocks: only the new ones are read.
    chain.mine(CHUNK + 1)
    before = chain.requests()
    assert await scan.first() is None
    assert chain.requests() - before == _chunks(head + 1, chain.w3.eth.block_number) == 2
    # A log arriving later is found by the same scan, within the new blocks.
    made = chain.mint(client.address, 2)
    log = await scan.first()
    assert log is not None and int(log["blockNumber"]) == made
    before = chain.requests()
    assert await chain.scan(client.address, low).newest() is not None
    # newest() reads down from the head: the log is in its first chunk.
    assert chain.requests() - before == 1


async def test_the_first_block_at_or_after_a_time(chain: Chain) -> None:
    head = chain.w3.eth.block_number
    stamp = int(chain.w3.eth.get_block(head)["timestamp"]) + 1_000
    for step in (0, 50, 50, 700):  # blocks at stamp, +50, +100, +800
        chain.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [stamp + step])
        chain.mine(1)
        stamp += step
    first = head + 1
    assert await block_at_time(chain.aw3, stamp - 800) == first
    assert await block_at_time(chain.aw3, stamp - 799) == first + 1
    assert await block_at_time(chain.aw3, stamp - 750) == first + 1
    assert await block_at_time(chain.aw3, stamp - 749) == first + 2
    assert await block_at_time(chain.aw3, stamp) == first + 3
    assert await block_at_time(chain.aw3, stamp + 1) == first + 4  # none yet: the next one
    assert await block_at_time(chain.aw3, 0) == 0
    # Binary search: about log2(head) block reads, not one per block.
    before = chain.provider.counts["eth_getBlockByNumber"]
    await block_at_time(chain.aw3, stamp - 750)
    reads = chain.provider.counts["eth_getBlockByNumber"] - before
    assert reads <= math.ceil(math.log2(first + 5)) + 1

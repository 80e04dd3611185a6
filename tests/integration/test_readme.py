"""The README followed literally: every `make` and `indexmaker` command it shows (in code
blocks and inline) is one that exists and takes those arguments as written."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from indexmaker.app.cli import _parser

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
# What the usage lines' placeholders stand for.
PLACEHOLDERS = {
    "FILE": "indexmaker.example.toml",
    "H": "127.0.0.1",
    "P": "3100",
    "CLIENT_ORDER_ID": "o-1",
    "AMOUNT": "10",
}


def _commands() -> list[str]:
    blocks = re.findall(r"```\n(.*?)```", README, re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    inline = re.findall(r"`((?:\.venv/bin/)?indexmaker [^`]*|make [^`]*)`", README)
    # A command, not a quoted message (`indexmaker serve: solver.tick: …`).
    command = re.compile(r"((\.venv/bin/)?indexmaker|make) [a-z-]+( |$)")
    commands = [c for c in (*lines, *inline) if command.match(c) and "\n" not in c]
    return sorted(set(commands))


COMMANDS = _commands()


def test_the_readme_shows_the_commands_a_newcomer_needs() -> None:
    # The three-command path from nothing to a minted index, exactly as a newcomer runs it.
    for needed in ("make serve", ".venv/bin/indexmaker deposit", ".venv/bin/indexmaker order"):
        assert any(c.startswith(needed) for c in COMMANDS), needed
    # Bare `indexmaker` is not on PATH after make: a code block never tells anyone to run it.
    blocks = re.findall(r"```\n(.*?)```", README, re.S)
    assert not [line for b in blocks for line in b.splitlines() if line.startswith("indexmaker ")]


@pytest.mark.parametrize("command", [c for c in COMMANDS if "indexmaker " in c])
def test_every_indexmaker_command_parses(command: str) -> None:
    words = [PLACEHOLDERS.get(w, w) for w in shlex.split(command.replace("[", "").replace("]", ""))]
    _parser().parse_args(words[1:])  # argparse exits (a test failure) on anything it refuses


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("make ")])
def test_every_make_command_exists(command: str) -> None:
    # A dry run: the target and its ARGS are known to make, nothing is executed.
    result = subprocess.run(
        ["make", "-n", *shlex.split(command)[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    if "ARGS=" in command:
        args = shlex.split(command.split("ARGS=", 1)[1])[0]
        assert args in result.stdout  # passed through to the command


def _layout_paths() -> list[str]:
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def test_the_layout_table_names_every_package_and_test_folder_and_nothing_else() -> None:
    """A package or test folder added without a row (venues/, observability/, security/ once
    were) leaves a newcomer a part of the service nobody told them about."""
    listed = _layout_paths()
    assert listed, "no layout table"
    assert [p for p in listed if not (ROOT / p).exists()] == []
    packages = {
        f"src/indexmaker/{p.name}/"
        for p in (ROOT / "src/indexmaker").iterdir()
        if (p / "__init__.py").exists()
    }
    venues = {
        f"src/indexmaker/venues/{p.name}/"
        for p in (ROOT / "src/indexmaker/venues").iterdir()
        if (p / "__init__.py").exists()
    }
    covered = set(listed) | {f"src/indexmaker/{p}/" for p in ("venues",)}
    assert (packages | venues) - covered == set()
    test_folders = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").exists()}
    tests_row = next(line for line in README.splitlines() if line.startswith("| `tests/`"))
    assert {name for name in test_folders if f"`{name}/`" not in tests_row} == set()


def test_every_order_id_a_command_names_was_given_by_an_earlier_order() -> None:
    """Review (issue 11): `verify-invoice page.json --id o-1` exited 2 (the file holds 0
    matching invoices) because the `order` before it had no `--id` and picked a random one.
    An id a code block's command names must be one an earlier `order --id` gave."""
    named: list[str] = []
    for block in re.findall(r"```\n(.*?)```", README, re.S):
        given: set[str] = set()
        for line in block.splitlines():
            words = shlex.split(line.split("#")[0])
            if len(words) < 2 or not words[0].endswith("indexmaker"):
                continue
            ids = [after for before, after in itertools.pairwise(words) if before == "--id"]
            if words[1] == "order":
                given.update(ids)
            else:
                named += ids
                assert set(ids) <= given, f"{line!r}: no earlier `order --id` in its block"
    assert named, "the README's verify-invoice example names no --id any more"

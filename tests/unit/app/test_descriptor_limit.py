"""`serve` takes its soft descriptor limit up to the hard one at start (app/cli.py), so the
per-source caps bind before descriptors run out; run in a child so this process keeps its own."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
from indexmaker.app.cli import _raise_descriptor_limit
_raise_descriptor_limit()
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
"""


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    soft, hard = (int(v) for v in out.stdout.split())
    assert soft > 128
    assert soft == hard or hard == -1

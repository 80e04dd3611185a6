"""`make bench`: run every benchmark module here (bench_*.py) and print its figures."""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    sys.path.insert(0, str(here))  # benchmarks import each other's helpers
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.node()}")
    for path in sorted(here.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # dataclasses look their module up while defining
        spec.loader.exec_module(module)
        print(f"\n== {path.stem} ==")
        for line in module.run():
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

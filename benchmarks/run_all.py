"""Run every benchmark in turn (``make bench``): one at a time, never two timing runs at once.

Each benchmark prints its table and writes ``benchmarks/results/<name>.csv``. Pass ``--quick``
for short time limits (a smoke run), or names to run a subset::

    python benchmarks/run_all.py                      # everything, full limits (hours)
    python benchmarks/run_all.py --quick partition_ctdp routing_vrptw
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "partition_ctdp": ([], ["--sizes", "1000", "--time-limit", "10"]),
    "partition_china": ([], ["--accounts", "5000", "--territories", "25", "--time-limit", "20"]),
    "routing_vrptw": ([], ["--time-limit", "5", "--instances", "C101", "R101", "RC105"]),
    "call_cycle": ([], ["--reps", "2", "--time-limit", "5", "--factor", "2"]),
    "planning_loop": ([], ["--accounts", "1500", "--time-limit", "10", "--route-time", "0.5",
                           "--max-rounds", "3"]),
    "scale": ([], ["--sizes", "1000,10000"]),
    "load_test": ([], ["--requests", "40"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="short limits: a smoke run")
    args = parser.parse_args()
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    failures = []
    for name in names:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"== {name}: not present, skipped")
            continue
        full, quick = BENCHMARKS[name]
        cmd = [sys.executable, str(script), *(quick if args.quick else full)]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"== {name}: exit {rc} after {time.perf_counter() - t:.0f} s", flush=True)
        if rc not in (0, 3):
            failures.append(name)
    if failures:
        print(f"failed: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

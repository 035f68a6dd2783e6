"""Start-up time of the command line: wall time of ``bench --help`` (``python -m bench.cli --help``) in a fresh
interpreter, the cost every command pays before it does anything (imports included).

    python benchmarks/cli_startup.py [--repeats 7] [--target 1.0]

Prints every run's wall time and their median; exit status 1 when the median exceeds ``--target`` seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall_s(argv: list[str]) -> float:
    """Seconds one run of ``python -m bench.cli *argv`` takes, from the repository root."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--target", type=float, default=1.0, help="largest acceptable median, seconds")
    args = parser.parse_args(argv)
    wall_s(["--help"])  # warm the file cache (first import after an install compiles bytecode)
    times = [wall_s(["--help"]) for _ in range(args.repeats)]
    median = statistics.median(times)
    print("bench --help wall time (s): " + ", ".join(f"{t:.3f}" for t in times))
    print(f"median {median:.3f} s, target <= {args.target:.2f} s")
    ok = median <= args.target
    print("PASS" if ok else f"FAIL: bench --help takes more than {args.target:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

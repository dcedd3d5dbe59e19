"""The command line's start-up: the whole ``python -m pgtorchrl validate SPEC`` process (Python,
imports, validation, building the pipeline, checking its key flow), wall seconds, median over
repeats. With several ``--checkout`` folders (e.g. a ``git worktree`` of an earlier commit and this
one) their processes alternate, so a loaded machine slows both alike.

    python benchmarks/startup.py                                    # this checkout, 10 repeats
    python benchmarks/startup.py --checkout /tmp/base --checkout .  # two commits, alternated
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def validate_seconds(checkout: Path, spec: str) -> float:
    """One whole ``validate`` process run from ``checkout`` (its own ``pgtorchrl`` first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pgtorchrl", "validate", spec], cwd=checkout, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{checkout}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="pipelines/vpg_cartpole.yaml", help="relative to each checkout")
    parser.add_argument("--checkout", type=Path, action="append", help="a checkout's root (default: this one)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    checkouts = args.checkout or [Path(__file__).resolve().parents[1]]
    times: dict[Path, list[float]] = {c: [] for c in checkouts}
    for c in checkouts:  # one warm-up each: the file cache, compiled bytecode
        validate_seconds(c, args.spec)
    for _ in range(args.repeats):
        for c in checkouts:
            times[c].append(validate_seconds(c, args.spec))
    for c, ts in times.items():
        print(
            f"{c}: validate {args.spec}: median {statistics.median(ts):.2f} s over {len(ts)} "
            f"(min {min(ts):.2f}, max {max(ts):.2f})"
        )


if __name__ == "__main__":
    main()

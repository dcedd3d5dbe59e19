"""Runs the guide's TorchRL example (examples/vpg_cartpole.py) for several seeds and prints, per
seed, whether it solved CartPole-v1 (eval return >= 475 over 10 deterministic episodes), the env
frames it took and the whole process's seconds.

    python benchmarks/readme_example.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vpg_cartpole.py"


def run(seed: int) -> tuple[bool, int | None, float]:
    """Solved, frames at the last evaluation, whole-process seconds."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(EXAMPLE), str(seed)], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    evals = re.findall(r"^(\d+) frames: eval return ([\d.]+)$", out.stdout, re.M)
    if not evals:
        return False, None, seconds
    frames, ret = evals[-1]
    return float(ret) >= 475, int(frames), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    solved = 0
    for seed in args.seeds:
        ok, frames, seconds = run(seed)
        solved += ok
        print(f"seed {seed}: {'solved' if ok else 'NOT solved'} at {frames} frames, {seconds:.1f} s whole process")
    print(f"solved {solved}/{len(args.seeds)}")


if __name__ == "__main__":
    main()

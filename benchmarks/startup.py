"""The command line's start-up: the whole ``python -m pgtorchrl validate SPEC`` process (Python,
imports, validation, building the pipeline, checking its key flow), wall seconds, median over
repeats. With several ``--checkout`` folders (e.g. a ``git worktree`` of an earlier commit and this
one) their processes alternate, so a loaded machine slows both alike.

    python benchmarks/startup.py                                    # this checkout, 10 repeats
    python benchmarks/startup.py --checkout /tmp/base --checkout .  # two commits, alternated
    python benchmarks/startup.py --imports                          # + what importing each layer costs

With ``--imports`` it also times ``python -c "import MODULE"`` processes, alternated, for the layers
under the command line (torch, tensordict, TorchRL's objectives, all the command imports) and, when
installed, stable-baselines3: the floor under any process built on them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def process_seconds(checkout: Path, *args: str) -> float:
    """One whole ``python ARGS`` process run from ``checkout`` (its own ``pgtorchrl`` first on the
    path), wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=checkout, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{checkout}: python {' '.join(args)}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return seconds


def validate_seconds(checkout: Path, spec: str) -> float:
    """One whole ``validate`` process."""
    return process_seconds(checkout, "-m", "pgtorchrl", "validate", spec)


IMPORTS = {  # a label: the modules one ``python -c`` process imports
    "python (no import)": "",
    "torch": "torch",
    "gymnasium + torch": "gymnasium, torch",
    "tensordict (+ torch)": "tensordict",
    "torchrl.objectives (+ tensordict, torch)": "torchrl.objectives",
    "pgtorchrl.cli + pipeline.build (all the command imports)": "pgtorchrl.cli, pgtorchrl.pipeline.build",
    "stable_baselines3 (+ torch, gymnasium)": "stable_baselines3",
}


def import_seconds(modules: str, checkout: Path) -> float:
    """One whole ``python -c "import modules"`` process."""
    return process_seconds(checkout, "-c", f"import {modules}" if modules else "pass")


def print_import_floor(checkout: Path, repeats: int) -> None:
    """The median process time of each :data:`IMPORTS` entry, alternated round by round."""
    import importlib.util

    has_sb3 = importlib.util.find_spec("stable_baselines3") is not None
    labels = [k for k, v in IMPORTS.items() if has_sb3 or v != "stable_baselines3"]
    times: dict[str, list[float]] = {k: [] for k in labels}
    for label in labels:  # warm-up: the file cache, compiled bytecode
        import_seconds(IMPORTS[label], checkout)
    for _ in range(repeats):
        for label in labels:
            times[label].append(import_seconds(IMPORTS[label], checkout))
    for label in labels:
        print(f"import {label}: median {statistics.median(times[label]):.2f} s over {repeats}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="pipelines/vpg_cartpole.yaml", help="relative to each checkout")
    parser.add_argument("--checkout", type=Path, action="append", help="a checkout's root (default: this one)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--imports", action="store_true", help="also time the import of each layer")
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
    if args.imports:
        print_import_floor(checkouts[-1], args.repeats)


if __name__ == "__main__":
    main()

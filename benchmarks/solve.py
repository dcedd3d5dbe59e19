"""Time to solve a pipeline end to end, per seed: the whole `python -m pgtorchrl` process.

Measures, for each seed, the env frames the run needed, the wall seconds of the whole process
(Python start-up, imports, MLflow set-up, training, evaluation, artifact logging) and its peak
RSS. Runs go to a temporary MLflow store unless --tracking-uri is given.

    python benchmarks/solve.py                         # vpg_cartpole.yaml, seeds 0-4
    python benchmarks/solve.py pipelines/reinforce_cartpole.yaml --seeds 0 1 2
    python benchmarks/solve.py pipelines/vpg_cartpole.yaml optim.lr=1.0e-2
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

RESULT = re.compile(
    r"^(solved|finished): eval/return_mean=(\S+) after (\d+) frames, ([\d.]+) s; mlflow run (\w+)", re.M
)


def timed_process(cmd: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """Runs a whole process; returns it, its wall seconds and its own peak RSS in MB (the
    ``ru_maxrss`` that ``wait4`` reports for that one child)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    return done, wall, usage.ru_maxrss / 1024


def run_once(pipeline: str, seed: int, overrides: list[str], tracking_uri: str) -> dict:
    proc, wall, peak_mb = timed_process(
        [sys.executable, "-m", "pgtorchrl", pipeline, f"seed={seed}", *overrides],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
    )
    match = RESULT.search(proc.stdout)
    if proc.returncode or not match:
        raise SystemExit(f"seed {seed}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}")
    return {
        "seed": seed,
        "solved": match.group(1) == "solved",
        "eval_return": float(match.group(2)),
        "frames": int(match.group(3)),
        "train_s": float(match.group(4)),
        "wall_s": wall,
        "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", nargs="?", default="pipelines/vpg_cartpole.yaml")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides passed through")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tracking-uri", default=None, help="default: a temporary SQLite store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.tracking_uri or f"sqlite:///{tmp}/mlflow.db"
        print(f"{args.pipeline} {' '.join(args.overrides)}")
        print(f"{'seed':>4} {'solved':>6} {'eval':>6} {'frames':>8} {'train_s':>8} {'wall_s':>7} {'peak_rss_mb':>11}")
        rows = []
        for seed in args.seeds:
            row = run_once(args.pipeline, seed, args.overrides, uri)
            rows.append(row)
            print(
                f"{row['seed']:>4} {str(row['solved']):>6} {row['eval_return']:>6.1f} {row['frames']:>8} "
                f"{row['train_s']:>8.1f} {row['wall_s']:>7.1f} {row['peak_rss_mb']:>11.0f}",
                flush=True,
            )
    solved = [r for r in rows if r["solved"]]
    print(f"solved {len(solved)}/{len(rows)} seeds", end="")
    if solved:
        print(
            f"; median over solved: {statistics.median(r['frames'] for r in solved):.0f} frames, "
            f"{statistics.median(r['wall_s'] for r in solved):.1f} s wall, "
            f"{statistics.median(r['train_s'] for r in solved):.1f} s training; "
            f"max peak RSS {max(r['peak_rss_mb'] for r in rows):.0f} MB"
        )
    else:
        print()


if __name__ == "__main__":
    main()

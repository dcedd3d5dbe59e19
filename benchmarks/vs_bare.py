"""pgtorchrl against the bare-torch loops it must beat (``bare_ppo.py``, ``bare_vpg.py``) and, for PPO,
stable-baselines3, alternated in one run.

For each algorithm, rounds of whole processes train the same frames with the same settings: the
pipeline (``pipelines/mujoco/ppo_halfcheetah.yaml`` or ``vpg_halfcheetah.yaml``, no evaluation, no
checkpoints, no model logged), its bare loop and, with ``--sb3``, SB3's PPO (``vs_sb3_ppo.py``'s
settings); each round starts with a different one. Printed per process: training frames per
second (frames over the training loop's seconds: collection and updates) and the peak RSS; then,
per algorithm, the median over rounds of each round's ratio pgtorchrl / other (the goals of issue
30: >= 1.25 over bare and >= 2 over SB3 for PPO, >= 1.0 over bare for VPG) and the median peak RSS.

    python benchmarks/vs_bare.py --algos ppo vpg --pairs 5 --frames 102400 --sb3
    python benchmarks/vs_bare.py --algos ppo vpg --num-envs 8 --sb3       # the same at 8 envs
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from solve import RESULT, timed_process
from vs_sb3_ppo import sb3_once

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINES = {"ppo": "pipelines/mujoco/ppo_halfcheetah.yaml", "vpg": "pipelines/mujoco/vpg_halfcheetah.yaml"}
QUIET = ["eval.episodes=0", "tracking.checkpoint_every_frames=null", "tracking.log_models=false"]
BARE_LINE = re.compile(r"^bare_\w+: (\d+) frames at (\d+) frames/s", re.M)


def pgtorchrl_once(algo: str, seed: int, frames: int, num_envs: int | None, uri: str) -> dict:
    envs = [f"env.num_envs={num_envs}"] if num_envs else []
    cmd = [sys.executable, "-m", "pgtorchrl", PIPELINES[algo], f"seed={seed}", f"train.total_frames={frames}"]
    proc, wall, rss = timed_process([*cmd, *envs, *QUIET], env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    match = RESULT.search(proc.stdout)
    if proc.returncode or not match:
        raise SystemExit(f"pgtorchrl: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}")
    done, seconds = int(match.group(3)), float(match.group(4))
    return {"frames": done, "fps": done / seconds, "wall_s": wall, "rss_mb": rss}


def bare_once(algo: str, seed: int, frames: int, num_envs: int | None) -> dict:
    envs = ["--num-envs", str(num_envs)] if num_envs else []
    cmd = [sys.executable, os.path.join(HERE, f"bare_{algo}.py"), "--seed", str(seed), "--total-frames", str(frames)]
    proc, wall, rss = timed_process([*cmd, *envs])
    match = BARE_LINE.search(proc.stdout)
    if proc.returncode or not match:
        raise SystemExit(f"bare_{algo}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return {"frames": int(match.group(1)), "fps": float(match.group(2)), "wall_s": wall, "rss_mb": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", choices=sorted(PIPELINES), default=sorted(PIPELINES))
    parser.add_argument("--pairs", type=int, default=5, help="alternated pgtorchrl/bare pairs per algorithm")
    parser.add_argument("--frames", type=int, default=102_400, help="frames each process trains")
    parser.add_argument("--num-envs", type=int, default=None, help="envs per process (default: the pipeline's)")
    parser.add_argument("--sb3", action="store_true", help="PPO: stable-baselines3 too (pip install stable-baselines3)")
    args = parser.parse_args()
    print("| algo | process | round | training frames/s | whole process s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algos:
            names = ["pgtorchrl", "bare"] + (["sb3"] if args.sb3 and algo == "ppo" else [])
            runs: dict[str, list[dict]] = {name: [] for name in names}
            for pair in range(args.pairs):
                for name in names[pair % len(names) :] + names[: pair % len(names)]:  # each round starts elsewhere
                    if name == "pgtorchrl":
                        r = pgtorchrl_once(algo, pair, args.frames, args.num_envs, f"sqlite:///{tmp}/mlflow.db")
                    elif name == "bare":
                        r = bare_once(algo, pair, args.frames, args.num_envs)
                    else:
                        r = sb3_once(pair, args.frames, args.num_envs or 1)
                    runs[name].append(r)
                    print(
                        f"| {algo} | {name} | {pair} | {r['fps']:.0f} | {r['wall_s']:.1f} | {r['rss_mb']:.0f} |",
                        flush=True,
                    )
            for other in names[1:]:
                ratio = statistics.median(a["fps"] / b["fps"] for a, b in zip(runs["pgtorchrl"], runs[other]))
                rss = [statistics.median(r["rss_mb"] for r in runs[name]) for name in ("pgtorchrl", other)]
                envs = args.num_envs or "the pipeline's"
                summary.append(
                    f"{algo}, {envs} envs: median ratio pgtorchrl / {other} training frames/s = {ratio:.2f} over "
                    f"{args.pairs} rounds; median peak RSS {rss[0]:.0f} MB against {rss[1]:.0f} MB"
                )
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

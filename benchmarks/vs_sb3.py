"""CartPole-v1 solved end to end: pgtorchrl against a stable-baselines3 A2C process, alternated.

Each side is a whole process, timed from start to exit (imports, set-up, training, evaluation),
with the same protocol: 8 envs, a deterministic evaluation of 10 episodes every 4096 frames,
stop when its mean reaches 475. SB3's A2C uses rl-baselines3-zoo's tuned CartPole-v1
hyperparameters (``n_envs: 8``, ``ent_coef: 0.0``, the rest A2C's defaults; 500k frames at
most). Seeds alternate pgtorchrl, SB3, pgtorchrl, ...; the medians are printed.

    pip install stable-baselines3       # not a pgtorchrl dependency
    python benchmarks/vs_sb3.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from solve import run_once, timed_process

SB3_CHILD = r"""
import sys, time
from stable_baselines3 import A2C
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env
seed = int(sys.argv[1])
env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=seed + 10_000)
stop = StopTrainingOnRewardThreshold(reward_threshold=475.0, verbose=0)
# eval_freq counts vector steps: 512 x 8 envs = every 4096 frames
callback = EvalCallback(eval_env, n_eval_episodes=10, eval_freq=512, deterministic=True,
                        callback_on_new_best=stop, verbose=0)
model = A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, device="cpu", verbose=0)
train_start = time.perf_counter()
model.learn(total_timesteps=500_000, callback=callback)
print(f"RESULT {model.num_timesteps} {callback.best_mean_reward} {time.perf_counter() - train_start:.2f}")
"""


def sb3_once(seed: int) -> dict:
    proc, wall, peak_mb = timed_process([sys.executable, "-c", SB3_CHILD, str(seed)])
    match = re.search(r"^RESULT (\d+) (\S+) (\S+)", proc.stdout, re.M)
    if proc.returncode or not match:
        raise SystemExit(f"sb3 seed {seed}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return {
        "seed": seed,
        "solved": float(match.group(2)) >= 475.0,
        "eval_return": float(match.group(2)),
        "frames": int(match.group(1)),
        "train_s": float(match.group(3)),
        "wall_s": wall,
        "peak_rss_mb": peak_mb,
    }


def sb3_missing() -> bool:
    """Whether stable-baselines3 is missing (it is no pgtorchrl dependency), said on stderr."""
    try:
        import stable_baselines3  # noqa: F401 (only whether it imports)
    except ImportError:
        print("stable-baselines3 is not installed: pip install stable-baselines3", file=sys.stderr)
        return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if sb3_missing():
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        for seed in args.seeds:
            rows.append(("pgtorchrl", run_once("pipelines/vpg_cartpole.yaml", seed, [], uri)))
            rows.append(("sb3-a2c", sb3_once(seed)))
    print("| process | seed | solved | frames | training s | whole process s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['seed']} | {r['solved']} | {r['frames']} | {r['train_s']:.1f} | {r['wall_s']:.1f} |")
    for name in ("pgtorchrl", "sb3-a2c"):
        mine = [r for n, r in rows if n == name]
        print(
            f"{name}: solved {sum(r['solved'] for r in mine)}/{len(mine)}, median frames "
            f"{statistics.median(r['frames'] for r in mine):.0f}, median training "
            f"{statistics.median(r['train_s'] for r in mine):.1f} s, median whole process "
            f"{statistics.median(r['wall_s'] for r in mine):.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

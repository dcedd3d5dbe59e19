"""The MuJoCo table: VPG, NPG, TRPO and PPO on HalfCheetah, Hopper and Walker2d (-v5) against
published results, each under its reference's protocol (the headers of pipelines/mujoco/*.yaml).
The runs, the resuming and the table are benchmarks/benchmark_table.py's (experiment
``mujoco-benchmark``, tags ``mujoco.*``).

Per (algorithm, env) it prints ours next to the reference, in the reference's metric and step budget:

- vpg (Spinning Up): the mean return of the epoch's training episodes at 3M steps, smoothed over
  the last 11 epochs as Spinning Up's plots (``rollout/episode_return``);
- npg, trpo (Tianshou): the maximum over training of the seeds' mean ``eval/return_mean``;
- ppo (CleanRL): the mean training-episode return over the last 10 updates at 1M steps;
- trpo again (stable-baselines3-contrib, a second row): the last ``eval/return_mean`` at 1M steps.
  SB3-contrib trained with RL Zoo's settings (2 envs x 1024 steps, 20 critic epochs of 128-step
  minibatches, cg_damping 0.1), not with the pipeline's (Tianshou's): that row shows how this
  pipeline's result stands against the other published TRPO, not a reproduction of it.

    python benchmarks/mujoco_table.py                                        # all 12 pipelines, seeds 0-2
    python benchmarks/mujoco_table.py --algos vpg --envs halfcheetah --seeds 0 1 2
    python benchmarks/mujoco_table.py --table-only
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_table
from benchmark_table import ROOT, Reference, Suite, client

__all__ = ["MUJOCO", "client", "command", "parent_run", "table"]

#: per algorithm, the reference its pipelines follow first, then others shown beside it (their
#: own settings differ from the pipeline's: the table says so)
REFERENCES = {
    "vpg": (
        Reference(
            "Spinning Up VPG-PyTorch (-v3, 10 seeds)",
            "final training return, 11-epoch smoothing",
            "smoothed_training_return",
            3_000_000,
            {"halfcheetah": (632.0, None), "hopper": (815.0, None), "walker2d": (471.0, None)},
        ),
    ),
    "npg": (
        Reference(
            "Tianshou NPG (-v3, 10 seeds)",
            "max mean eval return",
            "max_mean_eval",
            1_000_000,
            {"halfcheetah": (3485.2, 716.6), "hopper": (1915.2, 550.5), "walker2d": (2503.2, 963.3)},
        ),
    ),
    "trpo": (
        Reference(
            "Tianshou TRPO (-v3, 10 seeds)",
            "max mean eval return",
            "max_mean_eval",
            1_000_000,
            {"halfcheetah": (4471.2, 804.9), "hopper": (2046.0, 1037.9), "walker2d": (3826.7, 782.7)},
        ),
        Reference(
            "SB3-contrib TRPO (-v3, 3 seeds, RL Zoo's settings, not this pipeline's)",
            "final eval return",
            "final_eval",
            1_000_000,
            {"halfcheetah": (1803.0, 46.0), "hopper": (3372.0, 215.0), "walker2d": (4502.0, 234.0)},
        ),
    ),
    "ppo": (
        Reference(
            "CleanRL ppo_continuous_action (-v4)",
            "final training return, last 10 updates",
            "smoothed_training_return",
            1_000_000,
            {"halfcheetah": (2905.85, 1129.37), "hopper": (2051.80, 313.94), "walker2d": (2890.97, 231.40)},
        ),
    ),
}
SMOOTHING = {
    "vpg": 11,
    "ppo": 10,
}  # training-return points averaged at the end (Spinning Up's plots, CleanRL's last updates)


MUJOCO = Suite(
    name="mujoco",
    title="MuJoCo",
    experiment="mujoco-benchmark",
    algos=("vpg", "npg", "trpo", "ppo"),
    envs={"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5"},
    pipeline=lambda algo, env: ROOT / "pipelines" / "mujoco" / f"{algo}_{env}.yaml",
    references=REFERENCES,
    smoothing=SMOOTHING,
)
command = functools.partial(benchmark_table.command, MUJOCO)
parent_run = functools.partial(benchmark_table.parent_run, MUJOCO)
table = functools.partial(benchmark_table.table, MUJOCO)

if __name__ == "__main__":
    benchmark_table.main(MUJOCO, __doc__, default_table="v5")

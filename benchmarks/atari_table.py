"""The Atari table: PPO (pipelines/ppo_atari_*.yaml: CleanRL's ``ppo_atari.py`` settings, one
Nature-CNN trunk under the policy and value heads) on Pong and Breakout (NoFrameskip-v4 with DQN's
preprocessing) at CleanRL's budget of 10M steps (agent steps of 4 ALE frames, CleanRL's
``global_step``), 3 seeds. The runs, the resuming and the table are benchmarks/benchmark_table.py's
(experiment ``atari-benchmark``, tags ``atari.*``).

Reference: CleanRL's published ``ppo_atari.py`` table (Huang et al. 2022; 3 seeds, 10M steps),
the mean training-episode return at the end of training; ours is ``rollout/episode_return`` (the
game's own score: the learner's episodic life and reward clipping do not touch it) averaged over
its last 100 points (the batches of 1,024 frames in which an episode ended). On this 2-core CPU a
run trains at about 180 frames/s (10M frames in about 15 hours), so a table spans sessions; the
curves show where a stopped run got to.

    python benchmarks/atari_table.py --envs pong --seeds 0 --parallel 1    # resumable
    python benchmarks/atari_table.py --envs pong --seeds 0 --table-only --out benchmarks/results/atari.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_table
from benchmark_table import ROOT, Reference, Suite

CLEANRL = Reference(
    "CleanRL ppo_atari.py (NoFrameskip-v4, 3 seeds)",
    "final training return, mean of the last 100 batches",
    "smoothed_training_return",
    10_000_000,
    {"pong": (20.36, 0.20), "breakout": (414.66, 28.09)},
)
ENVS = {"pong": "PongNoFrameskip-v4", "breakout": "BreakoutNoFrameskip-v4"}
ATARI = Suite(
    name="atari",
    title="Atari",
    experiment="atari-benchmark",
    algos=("ppo",),
    envs=ENVS,
    pipeline=lambda algo, env: ROOT / "pipelines" / f"{algo}_atari_{env}.yaml",
    references={"ppo": (CLEANRL,)},
    smoothing={"ppo": 100},
    curve_window=100_000,
)

if __name__ == "__main__":
    benchmark_table.main(ATARI, __doc__, default_table="cleanrl")

"""The MinAtar table: PPO (pipelines/ppo_minatar_*.yaml: MinAtar's network, CleanRL's Atari PPO
settings) on MinAtar's Breakout, SpaceInvaders, Asterix and Freeway (-v1) at MinAtar's budget of
5M frames, 3 seeds. The runs, the resuming and the table are benchmarks/benchmark_table.py's
(experiment ``minatar-benchmark``, tags ``minatar.*``); ours is the last ``eval/return_mean``
(10 deterministic episodes, every 250k frames) at 5M frames.

References: the MinAtar paper's (Young & Tian 2019) AC(lambda) and DQN curves, 30 seeds, are
published as figures only (the repository's ``img/results.gif``); no value has been read off them
yet, so the rows say ``no value`` and give ours alone.

    python benchmarks/minatar_table.py --envs breakout space_invaders    # seeds 0-2, resumable
    python benchmarks/minatar_table.py --table-only
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_table
from benchmark_table import ROOT, Reference, Suite

MINATAR_PAPER = Reference(
    "MinAtar AC(lambda) and DQN, Young & Tian 2019, 30 seeds: figures only, no value read yet",
    "final eval return",
    "final_eval",
    5_000_000,
    {},
)
ENVS = {
    "breakout": "MinAtar/Breakout-v1",
    "space_invaders": "MinAtar/SpaceInvaders-v1",
    "asterix": "MinAtar/Asterix-v1",
    "freeway": "MinAtar/Freeway-v1",
}
MINATAR = Suite(
    name="minatar",
    title="MinAtar",
    experiment="minatar-benchmark",
    algos=("ppo",),
    envs=ENVS,
    pipeline=lambda algo, env: ROOT / "pipelines" / f"{algo}_minatar_{env}.yaml",
    references={"ppo": (MINATAR_PAPER,)},
    smoothing={},
    curve_window=100_000,
)

if __name__ == "__main__":
    benchmark_table.main(MINATAR, __doc__, default_table="v1")

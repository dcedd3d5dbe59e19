"""The MinAtar table: PPO (pipelines/ppo_minatar_*.yaml: MinAtar's network, CleanRL's Atari PPO
settings) on MinAtar's Breakout, SpaceInvaders, Asterix and Freeway (-v1) at MinAtar's budget of
5M frames, 3 seeds. The runs, the resuming and the table are benchmarks/benchmark_table.py's
(experiment ``minatar-benchmark``, tags ``minatar.*``); ours is the last ``eval/return_mean``
(10 deterministic episodes, every 250k frames) at 5M frames.

References: the MinAtar paper's (Young & Tian 2019) AC(lambda) and DQN curves, 30 seeds, are
published as figures only (the repository's ``img/results.gif``); no value has been read off them
yet, so their rows say ``no value`` and give ours alone. The peer row is stable-baselines3's PPO
with the same network and settings (``benchmarks/minatar_sb3.py``), read from its committed result
files ``benchmarks/results/minatar_sb3_GAME_SEED.txt`` (the mean over the seeds run, the standard
deviation where there are several).

    python benchmarks/minatar_table.py --envs breakout space_invaders    # seeds 0-2, resumable
    python benchmarks/minatar_table.py --table-only
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

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


def sb3_peer(results: Path = ROOT / "benchmarks" / "results") -> Reference:
    """SB3's final eval returns per game, from ``minatar_sb3.py``'s result files (their second line
    says ``final eval/return_mean X at N frames``)."""
    finals: dict[str, list[float]] = {}
    for path in sorted(results.glob("minatar_sb3_*_*.txt")):
        game = path.stem.removeprefix("minatar_sb3_").rsplit("_", 1)[0]
        match = re.search(r"final eval/return_mean ([-\d.]+) at", path.read_text().splitlines()[1])
        if match is None:
            raise SystemExit(f"{path}: no 'final eval/return_mean X at' on its second line: rerun minatar_sb3.py")
        finals.setdefault(game, []).append(float(match.group(1)))
    seeds = sorted({len(v) for v in finals.values()}) or [0]
    return Reference(
        f"stable-baselines3 PPO, same network and settings, {'/'.join(map(str, seeds))} seed(s) (minatar_sb3.py)",
        "final eval return",
        "final_eval",
        5_000_000,
        {g: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else None) for g, v in finals.items()},
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
    references={"ppo": (MINATAR_PAPER, sb3_peer())},
    smoothing={},
    curve_window=100_000,
)

if __name__ == "__main__":
    benchmark_table.main(MINATAR, __doc__, default_table="v1")

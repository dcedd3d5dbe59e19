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
    python benchmarks/minatar_table.py --table-only --out benchmarks/results/minatar.txt   # + figures

With ``--out``, beside the table and the training-return curves (``STEM_curves_GAME.png``) it
writes ``STEM_eval_vs_sb3_GAME.png``: our seeds' eval returns against SB3's.
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
        f"stable-baselines3 PPO, same network and settings, seeds per game: {'/'.join(map(str, seeds))} "
        "(minatar_sb3.py)",
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


def sb3_eval_curves(game: str, results: Path = ROOT / "benchmarks" / "results") -> list[list[tuple[int, float]]]:
    """Each SB3 seed's eval points on ``game`` (the lines after ``frames eval/return_mean``)."""
    curves = []
    for path in sorted(results.glob(f"minatar_sb3_{game}_*.txt")):
        lines = path.read_text().splitlines()
        start = lines.index("frames eval/return_mean") + 1
        curves.append([(int(f), float(v)) for f, v in (line.split() for line in lines[start:] if line.strip())])
    return curves


def eval_vs_sb3_png(table: str, game: str) -> bytes | None:
    """Our seeds' ``eval/return_mean`` on ``game`` (the table's archived finished runs: each seed,
    and their mean) beside SB3's seeds (``minatar_sb3.py``), against env frames."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = benchmark_table.archive_file(MINATAR, table)
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    ours = [r["metrics"]["eval/return_mean"] for r in runs if r["tags"]["minatar.env"] == game]
    theirs = sb3_eval_curves(game)
    if not ours or not theirs:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, curve in enumerate(ours):
        ax.plot(*zip(*curve), color="C0", alpha=0.35, lw=1, label="pgtorchrl, each seed" if i == 0 else None)
    steps = min(len(c) for c in ours)
    mean = np.mean([[v for _, v in c[:steps]] for c in ours], axis=0)
    ax.plot([f for f, _ in ours[0][:steps]], mean, color="C0", lw=2, label=f"pgtorchrl, mean of {len(ours)} seeds")
    for i, curve in enumerate(theirs):
        label = f"stable-baselines3, {len(theirs)} seed" + "s" * (len(theirs) > 1)
        ax.plot(*zip(*curve), color="C1", lw=2, label=label if i == 0 else None)
    ax.set(xlabel="env frames", ylabel="eval/return_mean (10 deterministic episodes)", title=ENVS[game])
    ax.legend()
    return benchmark_table.png_bytes(fig)


if __name__ == "__main__":
    benchmark_table.main(MINATAR, __doc__, default_table="v1")
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", default="v1")
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    args, _ = parser.parse_known_args()
    if args.out is not None:  # beside the table and its curves: ours against the peer's, eval for eval
        for game in args.envs:
            png = eval_vs_sb3_png(args.table, game)
            if png is not None:
                (args.out.parent / f"{args.out.stem}_eval_vs_sb3_{game}.png").write_bytes(png)

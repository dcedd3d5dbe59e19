"""The slides' step-size problem, measured: VPG's learning rate against NPG's and TRPO's KL radius
when CartPole-v1's rewards are scaled by 0.01, 1 and 100 (TorchRL's RewardScaling transform).

Each method runs as one MLflow sweep (a parent run, a child per step size x reward scale x seed,
two at a time): VPG (GAE advantages *not* normalized, so the gradient's size follows the reward's)
over a grid of learning rates, with Adam (whose steps do not follow the gradient's size) and with
plain SGD (the slides' gradient step), and NPG and TRPO (TorchRL's PPOLoss surrogate) over a grid
of max_kl. The table and figure are built from every finished child run in the tracking store,
so methods can be run in separate invocations (``--methods vpg_sgd``) and reported together.
A run solves when its deterministic evaluation (10 episodes, the task's own unscaled return)
reaches 475. The script prints, per method and step size, the runs solved at each scale and the
median frames to solve, and the step sizes that solve every run at all three scales; it saves the
figure (fraction solved against step size, a line per scale) to benchmarks/results/step_size.png
and logs it, with the table, to an MLflow run of the experiment ``step-size``.

    python benchmarks/step_size.py                      # the full grid (about an hour on 2 cores)
    python benchmarks/step_size.py --frames 20000 --seeds 0 --methods vpg   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALES = (0.01, 1.0, 100.0)
COMMON = [
    "env.name=gym",
    "collector.name=sync",
    "advantage.normalize=false",
    "eval.every_frames=4096",
    "eval.episodes=10",
    "eval.target_return=475.0",
    "tracking.checkpoint_every_frames=null",
]
TRUST_REGION = [
    "loss={name: torchrl.PPOLoss, entropy_bonus: false, loss_critic_type: l2}",
    "collector.frames_per_batch=1024",
    "train.value_steps=10",
]
METHODS = {  # method -> (the step-size field, its grid, the overrides that make the method)
    "vpg": ("optim.lr", [3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2], []),  # Adam: its steps ignore the gradient's scale
    "vpg_sgd": ("optim.lr", [1.0e-3, 1.0e-2, 1.0e-1, 1.0], ["optim={name: sgd}"]),  # the slides' gradient step
    "npg": ("optim.max_kl", [0.003, 0.01, 0.03, 0.1], ["optim={name: npg}", *TRUST_REGION]),
    "trpo": ("optim.max_kl", [0.003, 0.01, 0.03, 0.1], ["optim={name: trpo}", *TRUST_REGION]),
}


def sweep_spec(method: str, frames: int, seeds: list[int], workers: int):
    from pgtorchrl.pipeline.parse import load_spec

    field, grid, overrides = METHODS[method]
    transforms = [f"[{{name: torchrl.RewardScaling, scale: {scale}}}]" for scale in SCALES]
    values = f"{{{field}: {grid}, env.transforms: [{', '.join(transforms)}], seed: {seeds}}}"
    labels = [
        f"{field.split('.')[-1]}={step:g} scale={scale:g} seed={seed}"  # the grid's order: field, scale, seed
        for step in grid
        for scale in SCALES
        for seed in seeds
    ]
    return load_spec(
        ROOT / "pipelines" / "vpg_cartpole.yaml",
        [
            *COMMON,
            *overrides,
            f"experiment=step-size-{method}",
            f"train.total_frames={frames}",
            f"sweep={{values: {values}, labels: [{', '.join(map(repr, labels))}], workers: {workers}}}",
        ],
    )


def run(method: str, frames: int, seeds: list[int], workers: int) -> None:
    """Trains one method's sweep (its child runs land in the MLflow experiment ``step-size-METHOD``)."""
    from pgtorchrl.experiments.sweep import run_sweep

    run_sweep(sweep_spec(method, frames, seeds, workers), source=f"step_size {method}")


def rows_from_store(methods) -> list[dict]:
    """One row per finished child run of each method's sweeps in the tracking store: step size,
    scale, seed, solved, frames (so the table and figure cover methods run in earlier sessions)."""
    from pgtorchrl.record.tracking import mlflow_client

    client = mlflow_client()
    rows = []
    for method in methods:
        experiment = client.get_experiment_by_name(f"step-size-{method}")
        if experiment is None:
            continue
        for child in client.search_runs(
            [experiment.experiment_id], "tags.`sweep.label` != '' and attributes.status = 'FINISHED'"
        ):
            step, scale, seed = (part.split("=")[1] for part in child.data.tags["sweep.label"].split(" "))
            end = client.get_metric_history(child.info.run_id, "time/train_seconds")
            rows.append(
                {
                    "method": method,
                    "step": float(step),
                    "scale": float(scale),
                    "seed": int(seed),
                    "solved": child.data.tags.get("solved") == "True",
                    "frames": end[-1].step if end else 0,
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        f"{'method':<6} {'step size':>9} "
        + " ".join(f"{'x' + format(s, 'g'):>14}" for s in SCALES)
        + "   (solved/seeds, median frames to solve)"
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        for step in sorted({r["step"] for r in mine}):
            cells = []
            for scale in SCALES:
                runs = [r for r in mine if r["step"] == step and r["scale"] == scale]
                solved = [r["frames"] for r in runs if r["solved"]]
                median = f"{statistics.median(solved):.0f}" if solved else "-"
                cells.append(f"{len(solved)}/{len(runs)} {median:>8}")
            lines.append(f"{method:<6} {step:>9g} " + " ".join(f"{c:>14}" for c in cells))
        working = sorted(s for s in {r["step"] for r in mine} if all(r["solved"] for r in mine if r["step"] == s))
        lines.append(
            f"{method:<6} solves all three scales at: {', '.join(map(format, working, ['g'] * len(working))) or 'none'}"
        )
    return "\n".join(lines)


def figure(rows: list[dict]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods):
        mine = [r for r in rows if r["method"] == method]
        steps = sorted({r["step"] for r in mine})
        for scale in SCALES:
            share = [
                statistics.mean(r["solved"] for r in mine if r["step"] == s and r["scale"] == scale) for s in steps
            ]
            ax.plot(steps, share, marker="o", label=f"rewards x {scale:g}")
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(METHODS[method][0].replace("optim.", ""))
        ax.set_title({"vpg": "VPG (Adam)", "vpg_sgd": "VPG (SGD)"}.get(method, method.upper()))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of seeds solved")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("CartPole-v1: which step sizes solve at every reward scale")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=60_000, help="frame budget per run (default 60000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--report-only", action="store_true", help="no training: the table and figure of the store's runs"
    )
    args = parser.parse_args()
    for method in [] if args.report_only else args.methods:
        run(method, args.frames, args.seeds, args.workers)
        print(table(rows_from_store([method])), flush=True)
    rows = rows_from_store(METHODS)
    text, png = table(rows), figure(rows)
    print(text)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "step_size.png").write_bytes(png)
    (out / "step_size.txt").write_text(text + "\n")
    import mlflow

    from pgtorchrl.record.tracking import resolve_tracking_uri

    mlflow.set_tracking_uri(resolve_tracking_uri(None))
    mlflow.set_experiment("step-size")
    with mlflow.start_run(run_name=f"step sizes, {args.frames} frames, seeds {args.seeds}"):
        mlflow.log_artifact(str(out / "step_size.txt"))
        mlflow.log_artifact(str(out / "step_size.png"))
    print(f"figure: {out / 'step_size.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()

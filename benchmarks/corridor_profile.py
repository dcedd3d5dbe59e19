"""Where a short-corridor setting's time goes: collection and per-step updates, per lockstep step.

The boxed algorithms update after every time step, and the runs of a setting move in lockstep:
each episode takes as many collection steps, and as many update steps, as its longest run's
episode. This script trains one setting with the pipeline's own collector and update (no
MLflow) and prints:

- lockstep steps (sum over episodes of the longest run's length) against each run's own steps
  (mean and max over runs). Runs at their own pace would still need, one after another, the
  slowest run's collection and update steps (2 x max), each costing a collection and an update;
- microseconds per lockstep step for collection and for the updates, and the total.

    python benchmarks/corridor_profile.py                                  # REINFORCE, 2^-13
    python benchmarks/corridor_profile.py --lr 6.103515625e-5              # 2^-14
    python benchmarks/corridor_profile.py pipelines/short_corridor_baseline.yaml --lr 1.953125e-3
    python benchmarks/corridor_profile.py --runs 300 --episodes 300        # more runs per lockstep step
    python benchmarks/corridor_profile.py --solver sequential              # the per-step loop as written
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from pgtorchrl.collectors.rollout import MASK_KEY
from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec
from pgtorchrl.trainers.trainer import update_per_step

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "pipelines" / "short_corridor_reinforce.yaml"))
    parser.add_argument("--lr", type=float, default=2.0**-13, help="the actor's step size (default 2^-13)")
    parser.add_argument(
        "--solver", default="auto", choices=["auto", "sequential", "fixed_point"], help="train.per_step_solver"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="runs stepped together (default: the spec's env.num_envs)"
    )
    parser.add_argument(
        "--episodes", type=int, default=None, help="episodes per run (default: the spec's train.iterations)"
    )
    args = parser.parse_args()

    overrides = ["sweep=null", f"optim.lr={args.lr!r}", f"train.per_step_solver={args.solver}"]
    if args.runs is not None:
        overrides.append(f"env.num_envs={args.runs}")
    spec = load_spec(args.spec, overrides)
    episodes = args.episodes or spec.train.iterations
    torch.set_num_threads(1)  # as the trainer runs
    p = build_pipeline(spec)
    batches = iter(p.make_collector())
    collect = update = 0.0
    lockstep = 0
    per_run = torch.zeros(spec.env.num_envs, dtype=torch.long)
    for episode in range(1, episodes + 1):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        p.advantage(batch)
        update_per_step(p, batch, episode, 0)
        t2 = time.perf_counter()
        collect, update = collect + t1 - t0, update + t2 - t1
        lockstep += batch.shape[-1]
        per_run += batch.get(MASK_KEY).sum(-1)
    mean_steps, max_steps = per_run.float().mean().item(), per_run.max().item()
    print(
        f"{Path(args.spec).name}, lr {args.lr:g}, solver {args.solver}, {spec.env.num_envs} runs x {episodes} episodes"
    )
    print(f"  lockstep steps:             {lockstep:>9,}")
    print(f"  steps per run, mean / max:  {mean_steps:>9,.0f} / {max_steps:,}")
    print(f"  lockstep / mean, / max:     {lockstep / mean_steps:>9.2f} / {lockstep / max_steps:.2f}")
    print(f"  collection:                 {collect / lockstep * 1e6:>9.0f} us per lockstep step, {collect:.1f} s")
    print(f"  updates:                    {update / lockstep * 1e6:>9.0f} us per lockstep step, {update:.1f} s")
    print(f"  total:                      {collect + update:>9.1f} s")


if __name__ == "__main__":
    main()

"""Training frames per second of the VPG MuJoCo pipeline against raw gymnasium stepping, and
where the difference goes, measured in one process, alternated, medians over repeats.

For ``pipelines/mujoco/vpg_halfcheetah.yaml`` (4 envs x 1000 steps per epoch, 80 critic steps):

- raw: one ``gymnasium.make(ENV)`` stepped with random actions (the issue's yardstick);
- env: the pipeline's ``gym_native`` env (its sub-envs stepped in one loop) with random actions;
- policy: the actor's forward and sample per step (``PolicyStep`` on the 4 envs' observations);
- collection: the pipeline's collector, batches without updates;
- training: the whole loop (``pgtorchrl.train``: collection, GAE, the policy step and the 80
  critic steps, logging), ``time/fps`` as the run logs it.

Per frame, the seconds split into env, policy, the rest of per-step Python (collection less env
and policy) and updates (training less collection).

    python benchmarks/mujoco_throughput.py [--pipeline SPEC] [--repeats 3] [OVERRIDE ...]
    python benchmarks/mujoco_throughput.py --pipeline pipelines/mujoco/ppo_halfcheetah.yaml
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import gymnasium as gym
import torch

ROOT = Path(__file__).resolve().parents[1]


def raw_fps(env_id: str, steps: int) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def env_fps(p, steps: int) -> float:
    env = p.env
    env.reset_tensors(None)
    n = env.batch_size.numel()
    actions = torch.rand(steps, n, env.action_spec.shape[-1]) * 2 - 1
    start = time.perf_counter()
    for action in actions:
        env.reset_finished(env.step_tensors(action))
    return steps * n / (time.perf_counter() - start)


def policy_seconds_per_frame(p, steps: int) -> float:
    from torchrl.envs import ExplorationType

    from pgtorchrl.modules.fast_policies import PolicyStep

    env = p.env
    obs = env.reset_tensors(None)
    act = PolicyStep(p.actor, steps, ExplorationType.RANDOM, env.batch_size, env.device)
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(steps):
            act(obs)
    return (time.perf_counter() - start) / (steps * env.batch_size.numel())


def collect_fps(p, batches: int) -> float:
    collector = p.make_collector()
    iterator = iter(collector)
    next(iterator)  # warm-up
    start, frames = time.perf_counter(), 0
    for _ in range(batches):
        frames += next(iterator).numel()
    return frames / (time.perf_counter() - start)


def train_fps(spec) -> float:
    from pgtorchrl import train

    result = train(spec)
    return statistics.median(row["time/fps"] for row in result.curve[1:])  # the first batch warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=str(ROOT / "pipelines" / "mujoco" / "vpg_halfcheetah.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6, help="epochs (batches) per training measurement")
    parser.add_argument("overrides", nargs="*", help="spec overrides, as on the command line (loss.name=ppo ...)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from pgtorchrl import build_pipeline, load_spec

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        epoch = load_spec(args.pipeline).collector.frames_per_batch
        spec = load_spec(
            args.pipeline,
            [
                "eval.episodes=0",
                "tracking.checkpoint_every_frames=null",
                "tracking.log_models=false",
                f"train.total_frames={epoch * args.epochs}",
                *args.overrides,
            ],
        )
        env_id = spec.env.env_id
        rows = {k: [] for k in ("raw", "env", "policy_s", "collect", "train")}
        for i in range(args.repeats):
            p = build_pipeline(spec)
            rows["raw"].append(raw_fps(env_id, 20_000))
            rows["env"].append(env_fps(p, 5_000))
            rows["policy_s"].append(policy_seconds_per_frame(p, 5_000))
            rows["collect"].append(collect_fps(p, args.epochs - 1))  # the collector stops at train.total_frames
            rows["train"].append(train_fps(spec))
            print(f"repeat {i}: " + ", ".join(f"{k} {v[-1]:.6g}" for k, v in rows.items()), file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    per = {"env": 1 / med["env"], "policy": med["policy_s"]}
    per["per-step python"] = max(0.0, 1 / med["collect"] - per["env"] - per["policy"])
    per["updates"] = max(0.0, 1 / med["train"] - 1 / med["collect"])
    total = 1 / med["train"]
    print(f"{args.pipeline} on {env_id}, {spec.env.num_envs} envs, median of {args.repeats} repeats, 1 thread")
    print(f"  raw gymnasium stepping (1 env, random actions)   {med['raw']:>9,.0f} frames/s")
    print(f"  the pipeline's env (random actions)              {med['env']:>9,.0f} frames/s")
    print(f"  collection (no updates)                          {med['collect']:>9,.0f} frames/s")
    print(f"  training (time/fps: collection + updates)        {med['train']:>9,.0f} frames/s")
    print(f"  training / raw stepping: {med['train'] / med['raw']:.2f}")
    print(
        "  where a training frame's time goes: "
        + ", ".join(f"{k} {1e6 * v:.0f} us ({100 * v / total:.0f}%)" for k, v in per.items())
    )


if __name__ == "__main__":
    main()

"""PPO, wall clock: pgtorchrl against stable-baselines3, alternated in one run, on one of two tasks.

``--task halfcheetah`` (default): HalfCheetah-v5, 102,400 frames with CleanRL's settings
(pipelines/mujoco/ppo_halfcheetah.yaml): 1 env x 2048 steps per update, 10 epochs of 32
minibatches (64 steps each), Adam 3e-4 (eps 1e-5), clip 0.2, clipped value loss, vf_coef 0.5, no
entropy term, max_grad_norm 0.5, GAE 0.99 / 0.95, separate (64, 64) tanh actor and critic,
state-independent log-std init 0, observations normalized by running statistics and rewards by
the running std of the discounted return, both clipped to +-10 (pgtorchrl: env gym_native's
normalize_* options on its native collector; SB3: VecNormalize, whose defaults these are), fused
Adam on pgtorchrl's side (its pipeline's setting).

``--task breakout``: BreakoutNoFrameskip-v4, 16,384 frames (agent steps) with CleanRL's
``ppo_atari.py`` settings (pipelines/ppo_atari_breakout.yaml): 8 envs x 128 steps, 4 epochs of 4
minibatches, Adam 2.5e-4 annealed (eps 1e-5), clip 0.1 (and on the value), entropy 0.01, vf_coef
0.5, max_grad_norm 0.5, GAE 0.99 / 0.95, one Nature-CNN trunk under both heads; SB3's
``CnnPolicy`` (the same Nature-CNN, shared) on ``make_atari_env`` (its ``AtariWrapper``: the same
preprocessing, episodic life and clipped rewards) with ``VecFrameStack(4)``.

``--task minatar_breakout``: MinAtar/Breakout-v1, 65,536 frames with the MinAtar table's pipeline
(pipelines/ppo_minatar_breakout.yaml: the same CleanRL Atari settings, lr not annealed, MinAtar's
network per actor and critic) against ``benchmarks/minatar_sb3.py``'s SB3 PPO (the same network as a
features extractor, the same settings); the pipeline steps its games on ``gym_native`` with the
``native`` collector (no TensorDict per step). ``--task minatar_breakout_torchrl``: the same on
TorchRL's path (``env.name=gym collector.name=sync``: ``GymWrapper`` and ``Collector``), on which the
MinAtar table was measured.

No evaluation on either side. Each side is a whole process; printed per run: training frames per
second (frames over the training loop's seconds: collection and updates) and the process's peak
RSS; then the median ratio pgtorchrl / SB3 of frames per second.

    pip install -c constraints.txt stable-baselines3      # not a pgtorchrl dependency
    python benchmarks/vs_sb3_ppo.py --repeats 2
    python benchmarks/vs_sb3_ppo.py --task breakout --repeats 2
    python benchmarks/vs_sb3_ppo.py --task minatar_breakout --repeats 3
    python benchmarks/vs_sb3_ppo.py --task minatar_breakout_torchrl --repeats 3
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(__file__))
from solve import RESULT, timed_process
from vs_sb3 import sb3_missing

FRAMES = 102_400  # 50 updates of 2048 steps
ATARI_FRAMES = 16_384  # 16 updates of 8 x 128 steps
MINATAR_FRAMES = 65_536  # 64 updates of 8 x 128 steps
NO_EVAL = ["eval.episodes=0", "tracking.checkpoint_every_frames=null", "tracking.log_models=false"]

SB3_CHILD = r"""
import sys, time
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
torch.set_num_threads(1)
seed, frames, n_envs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
env = VecNormalize(make_vec_env("HalfCheetah-v5", n_envs=n_envs, seed=seed), norm_obs=True, norm_reward=True,
                   clip_obs=10.0, clip_reward=10.0, gamma=0.99)
model = PPO("MlpPolicy", env, n_steps=2048 // n_envs, batch_size=64, n_epochs=10, learning_rate=3e-4, gamma=0.99,
            gae_lambda=0.95, clip_range=0.2, clip_range_vf=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
            policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh, log_std_init=0.0,
                               ortho_init=True, optimizer_kwargs=dict(eps=1e-5)),
            seed=seed, device="cpu", verbose=0)
start = time.perf_counter()
model.learn(total_timesteps=frames)
print(f"RESULT {model.num_timesteps} {time.perf_counter() - start:.3f}")
"""

SB3_ATARI_CHILD = r"""
import sys, time
import ale_py, gymnasium, torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_atari_env
gymnasium.register_envs(ale_py)
from stable_baselines3.common.vec_env import VecFrameStack
torch.set_num_threads(1)
seed, frames, n_envs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
env = VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=n_envs, seed=seed), n_stack=4)
model = PPO("CnnPolicy", env, n_steps=128, batch_size=128 * n_envs // 4, n_epochs=4,
            learning_rate=lambda remaining: 2.5e-4 * remaining, gamma=0.99, gae_lambda=0.95, clip_range=0.1,
            clip_range_vf=0.1, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
            policy_kwargs=dict(optimizer_kwargs=dict(eps=1e-5)), seed=seed, device="cpu", verbose=0)
start = time.perf_counter()
model.learn(total_timesteps=frames)
print(f"RESULT {model.num_timesteps} {time.perf_counter() - start:.3f}")
"""

SB3_MINATAR_CHILD = rf"""
import sys, time
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from minatar_sb3 import N_STEPS, make_env, policy_kwargs
torch.set_num_threads(1)
seed, frames, n_envs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
env = make_vec_env(lambda: make_env("MinAtar/Breakout-v1"), n_envs=n_envs, seed=seed)
model = PPO("MlpPolicy", env, n_steps=N_STEPS, batch_size=n_envs * N_STEPS // 4, n_epochs=4, learning_rate=2.5e-4,
            gamma=0.99, gae_lambda=0.95, clip_range=0.1, clip_range_vf=0.1, ent_coef=0.01, vf_coef=0.5,
            max_grad_norm=0.5, policy_kwargs=policy_kwargs(), seed=seed, device="cpu", verbose=0)
start = time.perf_counter()
model.learn(total_timesteps=frames)
print(f"RESULT {{model.num_timesteps}} {{time.perf_counter() - start:.3f}}")
"""


class Task(NamedTuple):
    """One comparison: pgtorchrl's pipeline and overrides, SB3's child script, frames and envs."""

    pipeline: str
    overrides: list[str]
    sb3_child: str
    frames: int
    n_envs: int


TASKS = {
    "halfcheetah": Task(
        "pipelines/mujoco/ppo_halfcheetah.yaml", [f"train.total_frames={FRAMES}", *NO_EVAL], SB3_CHILD, FRAMES, 1
    ),
    "breakout": Task(
        "pipelines/ppo_atari_breakout.yaml",
        [f"train.total_frames={ATARI_FRAMES}", *NO_EVAL],
        SB3_ATARI_CHILD,
        ATARI_FRAMES,
        8,
    ),
    "minatar_breakout": Task(
        "pipelines/ppo_minatar_breakout.yaml",
        [f"train.total_frames={MINATAR_FRAMES}", *NO_EVAL],
        SB3_MINATAR_CHILD,
        MINATAR_FRAMES,
        8,
    ),
}
TASKS["minatar_breakout_torchrl"] = TASKS["minatar_breakout"]._replace(  # the MinAtar table's path
    overrides=[*TASKS["minatar_breakout"].overrides, "env.name=gym", "collector.name=sync"]
)


def pgtorchrl_once(seed: int, uri: str, task: Task = TASKS["halfcheetah"]) -> dict:
    proc, wall, rss = timed_process(
        [sys.executable, "-m", "pgtorchrl", task.pipeline, f"seed={seed}", *task.overrides],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
    match = RESULT.search(proc.stdout)  # the command's last line, as benchmarks/solve.py reads it
    if proc.returncode or not match:
        raise SystemExit(f"pgtorchrl: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}")
    frames, seconds = int(match.group(3)), float(match.group(4))
    return {"frames": frames, "train_s": seconds, "fps": frames / seconds, "wall_s": wall, "rss_mb": rss}


def sb3_once(seed: int, frames: int = FRAMES, n_envs: int = 1, child: str = SB3_CHILD) -> dict:
    """One SB3 process of ``child`` (HalfCheetah: ``n_envs`` envs x ``2048 / n_envs`` steps per
    update; Atari: ``n_envs`` x 128), the settings above."""
    proc, wall, rss = timed_process([sys.executable, "-c", child, str(seed), str(frames), str(n_envs)])
    match = re.search(r"^RESULT (\d+) (\S+)", proc.stdout, re.M)
    if proc.returncode or not match:
        raise SystemExit(f"sb3: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    frames, seconds = int(match.group(1)), float(match.group(2))
    return {"frames": frames, "train_s": seconds, "fps": frames / seconds, "wall_s": wall, "rss_mb": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--task", choices=sorted(TASKS), default="halfcheetah")
    args = parser.parse_args()
    task = TASKS[args.task]
    if sb3_missing():
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            rows.append(("pgtorchrl", pgtorchrl_once(i, f"sqlite:///{tmp}/mlflow.db", task)))
            print(f"pgtorchrl run {i}: {rows[-1]}", flush=True)
            rows.append(("sb3", sb3_once(i, task.frames, task.n_envs, task.sb3_child)))
            print(f"sb3 run {i}: {rows[-1]}", flush=True)
    print("| process | frames | training s | training frames/s | whole process s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['frames']} | {r['train_s']:.1f} | {r['fps']:.0f} | {r['wall_s']:.1f} | {r['rss_mb']:.0f} |"
        )
    fps = {name: statistics.median(r["fps"] for n, r in rows if n == name) for name in ("pgtorchrl", "sb3")}
    rss = {name: statistics.median(r["rss_mb"] for n, r in rows if n == name) for name in ("pgtorchrl", "sb3")}
    print(
        f"median training frames/s: pgtorchrl {fps['pgtorchrl']:.0f}, sb3 {fps['sb3']:.0f}; "
        f"ratio pgtorchrl / sb3 = {fps['pgtorchrl'] / fps['sb3']:.2f}; median peak RSS "
        f"{rss['pgtorchrl']:.0f} MB against {rss['sb3']:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

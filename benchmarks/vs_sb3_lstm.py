"""Recurrent PPO side by side: pgtorchrl's LSTM pipeline against sb3-contrib's ``RecurrentPPO``,
alternated per seed in one run, on CartPole-v1 with its velocities hidden.

Both use rl-baselines3-zoo's ``ppo_lstm`` hyperparameters for ``CartPoleNoVel-v1`` (8 envs x 32
steps, batch 256, 20 epochs, gamma 0.98, GAE lambda 0.8, lr 1e-3 annealed linearly, no entropy
term, observations normalized (not rewards), ``MlpLstmPolicy`` with an LSTM of 64 for each of
actor and critic, then [64] ReLU, no orthogonal init): pgtorchrl's is
``pipelines/ppo_lstm_cartpole_novel.yaml``. Where the protocol differs: rl-zoo anneals the clip
range linearly from 0.2 (pgtorchrl keeps 0.2), and the weights' initial draws differ. The env is
the same gymnasium id (``pgtorchrl/CartPoleNoVel-v1``, rl-zoo's velocity mask) on both sides.

Both sides evaluate 10 deterministic episodes every 5,120 frames and stop at a mean of >= 475
(the pipeline's eval settings); printed per seed: frames to solve and the whole process's
seconds, then the median ratios pgtorchrl / SB3.

    pip install -c constraints.txt stable-baselines3 sb3-contrib      # not pgtorchrl dependencies
    python benchmarks/vs_sb3_lstm.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from solve import run_once, timed_process

PIPELINE = "pipelines/ppo_lstm_cartpole_novel.yaml"
EVERY, EPISODES, TARGET, BUDGET = 5120, 10, 475.0, 100_000


def sb3_child(seed: int) -> None:
    """One RecurrentPPO run in this process; prints ``sb3: solved FRAMES`` (or ``sb3: not FRAMES``)."""
    import numpy as np
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    import pgtorchrl.envs.ids  # noqa: F401 (registers pgtorchrl/CartPoleNoVel-v1)

    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env("pgtorchrl/CartPoleNoVel-v1", n_envs=8, seed=seed), norm_reward=False)
    evaluation = VecNormalize(
        make_vec_env("pgtorchrl/CartPoleNoVel-v1", n_envs=EPISODES, seed=seed + 10_000), norm_reward=False
    )
    evaluation.training = False

    def linear(start: float):
        return lambda progress: progress * start

    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=0.98,
        gae_lambda=0.8,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        policy_kwargs=dict(
            ortho_init=False,
            activation_fn=torch.nn.ReLU,
            lstm_hidden_size=64,
            enable_critic_lstm=True,
            net_arch=dict(pi=[64], vf=[64]),
        ),
        seed=seed,
        device="cpu",
    )

    def mean_return() -> float:
        evaluation.obs_rms = env.obs_rms.copy()
        obs = evaluation.reset()
        state, starts = None, np.ones(EPISODES, dtype=bool)
        totals, finished = np.zeros(EPISODES), np.zeros(EPISODES, dtype=bool)
        while not finished.all():
            action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
            obs, reward, done, _ = evaluation.step(action)
            totals += reward * ~finished  # each env's first episode
            finished |= done
            starts = done
        return float(totals.mean())

    class Solve(BaseCallback):
        next_eval = EVERY

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.next_eval += EVERY
                return mean_return() < TARGET
            return True

    model.learn(BUDGET, callback=Solve())
    solved = mean_return() >= TARGET
    print(f"sb3: {'solved' if solved else 'not'} {model.num_timesteps}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sb3-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_child is not None:
        return sb3_child(args.sb3_child)
    print(f"{'seed':>4} {'side':>9} {'solved':>6} {'frames':>7} {'wall_s':>7}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            ours = run_once(PIPELINE, seed, [], f"sqlite:///{tmp}/mlflow.db")
            proc, wall, _ = timed_process([sys.executable, __file__, "--sb3-child", str(seed)])
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("sb3: ")]
            if proc.returncode or not line:
                raise SystemExit(f"sb3 seed {seed}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
            _, status, frames = line[-1].split()
            theirs = {"solved": status == "solved", "frames": int(frames), "wall_s": wall}
            for side, row in (("pgtorchrl", ours), ("sb3", theirs)):
                print(
                    f"{seed:>4} {side:>9} {str(row['solved']):>6} {row['frames']:>7} {row['wall_s']:>7.1f}", flush=True
                )
            rows.append((ours, theirs))
    frames = statistics.median(a["frames"] / b["frames"] for a, b in rows)
    seconds = statistics.median(a["wall_s"] / b["wall_s"] for a, b in rows)
    print(f"median pgtorchrl / sb3: frames {frames:.2f}, whole-process seconds {seconds:.2f}")


if __name__ == "__main__":
    main()

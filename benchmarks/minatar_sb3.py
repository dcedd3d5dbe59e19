"""The MinAtar table's peer: stable-baselines3's PPO with the pipelines' network and settings, on
one MinAtar game and seed, at MinAtar's budget of 5M frames, resumable.

The same as ``pipelines/ppo_minatar_GAME.yaml`` (CleanRL's Atari PPO settings on MinAtar's
network): 8 envs x 128 steps, 4 epochs of 4 minibatches (256 steps), Adam 2.5e-4 (eps 1e-5, not
annealed), clip 0.1 on the ratio and the value, entropy 0.01, vf_coef 0.5, max_grad_norm 0.5, GAE
0.99 / 0.95, advantages normalized per minibatch; actor and critic each one 3x3 convolution of 16
channels, ReLU, a 128-unit layer, ReLU, then its head (SB3: a custom features extractor, not
shared, and empty ``net_arch``). The env is the same registered ``MinAtar/GAME-v1`` (minimal action
set, MinAtar's sticky actions), its bool frames as float32 for SB3. SB3 differs where its PPO does:
one Adam over both networks and one gradient norm over both (pgtorchrl: one each; its
``train.joint_grad_norm: true`` clips as SB3 does). Both initialize orthogonally (the pipelines'
``ortho_init``, SB3's ``ortho_init``).

Every 250k frames: 10 deterministic episodes on a separate env (``eval/return_mean``, as the
pipelines' ``eval`` section) and a checkpoint; a rerun continues from the newest checkpoint
(``--work``, default ``mlruns/minatar-sb3/GAME_SEED``). At the end it writes
``benchmarks/results/minatar_sb3_GAME_SEED.txt``: the final eval return (the table's metric),
every eval point and the training frames per second.

    pip install -c constraints.txt -e ".[minatar]" stable-baselines3
    python benchmarks/minatar_sb3.py --game breakout --seed 0
    python benchmarks/minatar_sb3.py --game space_invaders --seed 0 --frames 20000   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GAMES = {"breakout": "MinAtar/Breakout-v1", "space_invaders": "MinAtar/SpaceInvaders-v1"}
EVERY = 250_000  # frames between evaluations and checkpoints (the pipelines' eval.every_frames)
N_ENVS, N_STEPS = 8, 128


def make_env(env_id: str):
    import gymnasium as gym
    import numpy as np

    import pgtorchrl.envs.ids  # noqa: F401  (registers MinAtar's ids as pgtorchrl's env 'gym' sees them)

    return gym.wrappers.DtypeObservation(gym.make(env_id), np.float32)


def policy_kwargs() -> dict:
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class MinAtarNet(BaseFeaturesExtractor):
        """MinAtar's network below the head: conv 3x3 x 16, ReLU, 128 units, ReLU (HWC frames)."""

        def __init__(self, observation_space, features_dim: int = 128):
            super().__init__(observation_space, features_dim)
            h, w, c = observation_space.shape
            self.conv = torch.nn.Sequential(torch.nn.Conv2d(c, 16, 3, 1), torch.nn.ReLU(), torch.nn.Flatten())
            self.fc = torch.nn.Sequential(torch.nn.Linear(16 * (h - 2) * (w - 2), features_dim), torch.nn.ReLU())

        def forward(self, x):
            return self.fc(self.conv(x.permute(0, 3, 1, 2)))

    return dict(
        features_extractor_class=MinAtarNet,
        share_features_extractor=False,
        net_arch=dict(pi=[], vf=[]),
        optimizer_kwargs=dict(eps=1e-5),
    )


def evaluate(model, env, episodes: int = 10) -> float:
    """The mean return of ``episodes`` deterministic episodes."""
    returns = []
    for _ in range(episodes):
        obs, _ = env.reset()
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return sum(returns) / len(returns)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", choices=sorted(GAMES), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=5_000_000)
    parser.add_argument("--work", type=Path, default=None, help="checkpoints and the eval history (resumable)")
    parser.add_argument("--out", type=Path, default=None, help="the result file (default benchmarks/results/...)")
    args = parser.parse_args()
    try:
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
    except ImportError as e:
        print(f"error: {e.name} is missing: pip install -c constraints.txt -e '.[minatar]' stable-baselines3")
        return 1
    torch.set_num_threads(1)
    env_id = GAMES[args.game]
    work = args.work or ROOT / "mlruns" / "minatar-sb3" / f"{args.game}_{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    history_file = work / "history.json"
    history = json.loads(history_file.read_text()) if history_file.exists() else {"evals": [], "train_s": 0.0}
    env = make_vec_env(lambda: make_env(env_id), n_envs=N_ENVS, seed=args.seed)
    checkpoint = work / "model.zip"
    if checkpoint.exists():
        model = PPO.load(checkpoint, env=env, device="cpu")
        print(f"resumed at {model.num_timesteps} frames from {checkpoint}", flush=True)
    else:
        model = PPO(
            "MlpPolicy",  # with the features extractor above
            env,
            n_steps=N_STEPS,
            batch_size=N_ENVS * N_STEPS // 4,
            n_epochs=4,
            learning_rate=2.5e-4,
            gamma=0.99,
            gae_lambda=0.95,
            clip_range=0.1,
            clip_range_vf=0.1,
            ent_coef=0.01,
            vf_coef=0.5,
            max_grad_norm=0.5,
            policy_kwargs=policy_kwargs(),
            seed=args.seed,
            device="cpu",
            verbose=0,
        )
    eval_env = make_env(env_id)
    eval_env.reset(seed=10_000 + args.seed)
    while model.num_timesteps < args.frames:
        chunk = min(EVERY, args.frames - model.num_timesteps)
        start = time.perf_counter()
        model.learn(total_timesteps=chunk, reset_num_timesteps=False)
        history["train_s"] += time.perf_counter() - start
        history["evals"].append([model.num_timesteps, evaluate(model, eval_env)])
        model.save(checkpoint)
        history_file.write_text(json.dumps(history))
        frames, value = history["evals"][-1]
        print(f"{frames} frames: eval/return_mean {value:.2f}, {frames / history['train_s']:.0f} frames/s", flush=True)
    frames, final = history["evals"][-1]
    out = args.out or ROOT / "benchmarks" / "results" / f"minatar_sb3_{args.game}_{args.seed}.txt"
    lines = [
        f"# python benchmarks/minatar_sb3.py --game {args.game} --seed {args.seed} --frames {args.frames}",
        f"stable-baselines3 PPO on {env_id}, seed {args.seed}: final eval/return_mean {final:.2f} at {frames} frames "
        f"(10 deterministic episodes); training {frames / history['train_s']:.0f} frames/s (1 thread)",
        "frames eval/return_mean",
        *(f"{f} {v:.2f}" for f, v in history["evals"]),
    ]
    out.write_text("\n".join(lines) + "\n")
    print(lines[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Vanilla policy gradient written the straightforward way, in plain torch and gymnasium.

No pgtorchrl, TorchRL or tensordict: one file with exactly the settings, networks and number of
updates of ``pipelines/mujoco/vpg_halfcheetah.yaml`` (Spinning Up's VPG):

- ``num_envs`` (4) gymnasium envs x 1000 steps = 4000 frames per epoch, actions clipped to the box,
  no normalization; episode returns recorded (the task's own);
- a (64, 32) tanh actor giving the mean of a Gaussian with a state-independent log-std (init -0.5),
  a (64, 32) tanh critic, torch's default initialization (as pgtorchrl's ``mlp``);
- GAE (gamma 0.99, lambda 0.97) with the advantages standardized over the batch; the critic's
  target is the unstandardized advantage plus the value (the GAE return);
- per epoch: one Adam step (3e-4) of the actor on ``-mean(log pi(a|s) * A)``, taken on the same
  backward pass as the critic's first Adam step (1e-3) on the squared error, then 79 more critic
  steps on the whole batch (80 in all), as the pipeline does;
- acting under ``torch.inference_mode`` on the envs' observations, one step at a time.

Prints the training frames per second, the optimizer steps of each optimizer, and the mean
return of the last 10 episodes.

    python benchmarks/bare_vpg.py --total-frames 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import gymnasium as gym
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from bare_ppo import report, step  # the envs' step and the printed line, shared by both baselines


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--env-id", default="HalfCheetah-v5", help="a gymnasium env with a Box action")
    p.add_argument("--total-frames", type=int, default=3_000_000, help="env steps to train for")
    p.add_argument("--num-envs", type=int, default=4, help="envs stepped side by side (SyncVectorEnv)")
    p.add_argument("--frames-per-batch", type=int, default=4000, help="frames per epoch, over all envs")
    p.add_argument("--pi-lr", type=float, default=3e-4, help="the actor's Adam learning rate")
    p.add_argument("--vf-lr", type=float, default=1e-3, help="the critic's Adam learning rate")
    p.add_argument("--value-steps", type=int, default=80, help="critic steps per epoch (the first joint)")
    p.add_argument("--gamma", type=float, default=0.99, help="discount")
    p.add_argument("--lmbda", type=float, default=0.97, help="GAE's lambda")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_env(env_id: str):
    return lambda: gym.wrappers.ClipAction(gym.wrappers.RecordEpisodeStatistics(gym.make(env_id)))


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, 64), nn.Tanh(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, n_out))


def train(args: argparse.Namespace) -> dict:
    """Trains and returns ``fps``, ``actor_steps``, ``critic_steps``, ``returns`` (every episode's)."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id) for _ in range(args.num_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    n_obs, n_act = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    mean_net, critic = mlp(n_obs, n_act), mlp(n_obs, 1)
    log_std = nn.Parameter(torch.full((n_act,), -0.5))
    actor_params = [*mean_net.parameters(), log_std]
    actor_optim = torch.optim.Adam(actor_params, lr=args.pi_lr)
    critic_optim = torch.optim.Adam(critic.parameters(), lr=args.vf_lr)
    steps, n = args.frames_per_batch // args.num_envs, args.num_envs
    obs_buf, act_buf = torch.zeros(steps, n, n_obs), torch.zeros(steps, n, n_act)
    rew_buf, val_buf, next_val_buf, done_buf = (torch.zeros(steps, n) for _ in range(4))
    returns, counts = [], {"actor_steps": 0, "critic_steps": 0}
    obs = torch.as_tensor(envs.reset(seed=args.seed)[0], dtype=torch.float32)
    frames, start = 0, time.perf_counter()
    while frames < args.total_frames:
        for t in range(steps):
            with torch.inference_mode():
                action = torch.normal(mean_net(obs), log_std.exp())
                obs_buf[t], act_buf[t], val_buf[t] = obs, action, critic(obs).squeeze(-1)
            next_obs, reward, terminated, ended, final = step(envs, action, returns)
            rew_buf[t] = reward
            with torch.inference_mode():
                next_val_buf[t] = critic(final).squeeze(-1) * (1.0 - terminated)
            done_buf[t] = ended
            obs = next_obs
        frames += steps * n
        adv, last = torch.zeros(steps, n), torch.zeros(n)
        for t in reversed(range(steps)):  # GAE, cut at every episode's end
            last = (
                rew_buf[t]
                + args.gamma * next_val_buf[t]
                - val_buf[t]
                + args.gamma * args.lmbda * (1 - done_buf[t]) * last
            )
            adv[t] = last
        target = (adv + val_buf).flatten()
        weights = ((adv - adv.mean()) / (adv.std() + 1e-8)).flatten()
        b_obs, b_act = obs_buf.reshape(-1, n_obs), act_buf.reshape(-1, n_act)
        for k in range(args.value_steps):
            critic_optim.zero_grad()
            loss = ((critic(b_obs).squeeze(-1) - target) ** 2).mean()
            if k == 0:  # the actor's one step, on the same backward pass as the critic's first
                actor_optim.zero_grad()
                logp = torch.distributions.Normal(mean_net(b_obs), log_std.exp()).log_prob(b_act).sum(-1)
                loss = loss - (logp * weights).mean()
            loss.backward()
            if k == 0:
                actor_optim.step()
                counts["actor_steps"] += 1
            critic_optim.step()
            counts["critic_steps"] += 1
    fps = frames / (time.perf_counter() - start)
    envs.close()
    return {"fps": fps, "frames": frames, "returns": returns, **counts}


def main(argv=None) -> None:
    report("bare_vpg", train(parse(argv)))


if __name__ == "__main__":
    main()

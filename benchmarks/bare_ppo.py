"""PPO written the straightforward way, in plain torch and gymnasium: the loop pgtorchrl must beat.

No pgtorchrl, TorchRL or tensordict: one file in CleanRL's style (``ppo_continuous_action.py``),
with exactly the settings, networks and number of updates of ``pipelines/mujoco/ppo_halfcheetah.yaml``:

- gymnasium's wrappers: actions clipped to the box, observations normalized by running statistics
  and clipped to +-10, rewards divided by the running std of the discounted return (gamma 0.99) and
  clipped to +-10; episode returns recorded before any of that (the task's own);
- a (64, 64) tanh actor giving the mean of a Gaussian with a state-independent log-std (init 0),
  a (64, 64) tanh critic, torch's default initialization (as pgtorchrl's ``mlp``);
- ``num_envs`` x ``steps`` = 2048 frames per update; GAE (gamma 0.99, lambda 0.95); 10 epochs of 32
  minibatches; the clipped surrogate (0.2) with advantages normalized per minibatch; the clipped
  value loss (0.2) with coefficient 0.5; no entropy term;
- an Adam (3e-4, eps 1e-5) each for the actor and the critic, each gradient norm clipped to 0.5
  apart, as the pipeline does: one actor step and one critic step per minibatch;
- acting under ``torch.inference_mode`` on the envs' observations, one step at a time.

Prints the training frames per second (collection and updates, after the envs are made), the
number of optimizer steps of each optimizer, and the mean return of the last 10 episodes.

    python benchmarks/bare_ppo.py --total-frames 102400
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import gymnasium as gym
import numpy as np
import torch
from torch import nn


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--env-id", default="HalfCheetah-v5", help="a gymnasium env with a Box action")
    p.add_argument("--total-frames", type=int, default=1_000_000, help="env steps to train for")
    p.add_argument("--num-envs", type=int, default=1, help="envs stepped side by side (SyncVectorEnv)")
    p.add_argument("--frames-per-batch", type=int, default=2048, help="frames per update, over all envs")
    p.add_argument("--epochs", type=int, default=10, help="passes over each batch")
    p.add_argument("--minibatches", type=int, default=32, help="minibatches per epoch")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam's learning rate, actor and critic")
    p.add_argument("--gamma", type=float, default=0.99, help="discount (also of the reward normalization)")
    p.add_argument("--lmbda", type=float, default=0.95, help="GAE's lambda")
    p.add_argument("--clip", type=float, default=0.2, help="the surrogate's and the value's clip")
    p.add_argument("--vf-coef", type=float, default=0.5, help="the value loss's coefficient")
    p.add_argument("--max-grad-norm", type=float, default=0.5, help="each network's gradient norm clip")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_env(env_id: str, gamma: float):
    def thunk():
        env = gym.make(env_id)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env = gym.wrappers.ClipAction(env)
        env = gym.wrappers.NormalizeObservation(env)
        env = gym.wrappers.TransformObservation(env, lambda o: np.clip(o, -10, 10), env.observation_space)
        env = gym.wrappers.NormalizeReward(env, gamma=gamma)
        return gym.wrappers.TransformReward(env, lambda r: float(np.clip(r, -10, 10)))

    return thunk


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, n_out))


class Actor(nn.Module):
    def __init__(self, n_obs: int, n_act: int):
        super().__init__()
        self.mean = mlp(n_obs, n_act)
        self.log_std = nn.Parameter(torch.zeros(n_act))

    def dist(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self.mean(obs)
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))


def step(envs, action: torch.Tensor, returns: list[float]):
    """One step of every env (same-step autoreset): the next observations (reset ones where an
    episode ended), rewards, ``terminated`` and ``ended`` as floats, and each env's final
    observation of the step (for the bootstrap); the returns of the episodes that ended go to ``returns``."""
    next_obs, reward, terminated, truncated, info = envs.step(action.numpy())
    ended = np.logical_or(terminated, truncated)
    final = torch.as_tensor(next_obs, dtype=torch.float32)
    if ended.any():  # the final observation is in info, next_obs is the reset one
        final = final.clone()
        for i in np.flatnonzero(ended):
            final[i] = torch.as_tensor(info["final_obs"][i], dtype=torch.float32)
        returns += [float(r) for r in info["final_info"]["episode"]["r"][ended]]
    as_float = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return as_float(next_obs), as_float(reward), as_float(terminated), as_float(ended), final


def report(name: str, result: dict) -> None:
    """The benchmark's line: frames/s, optimizer steps, the mean return of the last 10 episodes."""
    recent = deque(result["returns"], maxlen=10)
    mean = sum(recent) / len(recent) if recent else float("nan")
    print(
        f"{name}: {result['frames']} frames at {result['fps']:.0f} frames/s; {result['actor_steps']} actor and "
        f"{result['critic_steps']} critic optimizer steps; mean return of the last {len(recent)} episodes {mean:.1f}"
    )


def train(args: argparse.Namespace) -> dict:
    """Trains and returns ``fps``, ``actor_steps``, ``critic_steps``, ``returns`` (every episode's)."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, args.gamma) for _ in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    n_obs, n_act = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    actor, critic = Actor(n_obs, n_act), mlp(n_obs, 1)
    actor_optim = torch.optim.Adam(actor.parameters(), lr=args.lr, eps=1e-5)
    critic_optim = torch.optim.Adam(critic.parameters(), lr=args.lr, eps=1e-5)
    steps, n = args.frames_per_batch // args.num_envs, args.num_envs
    obs_buf = torch.zeros(steps, n, n_obs)
    act_buf = torch.zeros(steps, n, n_act)
    logp_buf, rew_buf, val_buf, done_buf = (torch.zeros(steps, n) for _ in range(4))
    next_val_buf = torch.zeros(steps, n)  # the value of each step's next state (0 where it terminated)
    returns, counts = [], {"actor_steps": 0, "critic_steps": 0}
    obs = torch.as_tensor(envs.reset(seed=args.seed)[0], dtype=torch.float32)
    frames, start = 0, time.perf_counter()
    while frames < args.total_frames:
        for t in range(steps):
            with torch.inference_mode():
                dist = actor.dist(obs)
                action = dist.sample()
                obs_buf[t], act_buf[t] = obs, action
                logp_buf[t], val_buf[t] = dist.log_prob(action).sum(-1), critic(obs).squeeze(-1)
            next_obs, reward, terminated, ended, final = step(envs, action, returns)
            rew_buf[t] = reward
            with torch.inference_mode():
                next_val_buf[t] = critic(final).squeeze(-1) * (1.0 - terminated)
            done_buf[t] = ended
            obs = next_obs
        frames += steps * n
        # GAE over the batch, cut at every episode's end (a truncated one bootstraps its final value)
        adv = torch.zeros(steps, n)
        last = torch.zeros(n)
        for t in reversed(range(steps)):
            delta = rew_buf[t] + args.gamma * next_val_buf[t] - val_buf[t]
            last = delta + args.gamma * args.lmbda * (1.0 - done_buf[t]) * last
            adv[t] = last
        target = adv + val_buf
        b_obs, b_act = obs_buf.reshape(-1, n_obs), act_buf.reshape(-1, n_act)
        b_logp, b_adv, b_target, b_val = logp_buf.flatten(), adv.flatten(), target.flatten(), val_buf.flatten()
        size = b_obs.shape[0] // args.minibatches
        for _ in range(args.epochs):
            order = torch.randperm(b_obs.shape[0])
            for k in range(args.minibatches):
                idx = order[k * size : (k + 1) * size]
                dist = actor.dist(b_obs[idx])
                ratio = (dist.log_prob(b_act[idx]).sum(-1) - b_logp[idx]).exp()
                a = b_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                loss_actor = -torch.min(ratio * a, ratio.clamp(1 - args.clip, 1 + args.clip) * a).mean()
                value = critic(b_obs[idx]).squeeze(-1)
                clipped = b_val[idx] + (value - b_val[idx]).clamp(-args.clip, args.clip)
                loss_critic = torch.max((value - b_target[idx]) ** 2, (clipped - b_target[idx]) ** 2).mean()
                actor_optim.zero_grad()
                critic_optim.zero_grad()
                (loss_actor + args.vf_coef * loss_critic).backward()
                nn.utils.clip_grad_norm_(actor.parameters(), args.max_grad_norm)
                nn.utils.clip_grad_norm_(critic.parameters(), args.max_grad_norm)
                actor_optim.step()
                critic_optim.step()
                counts["actor_steps"] += 1
                counts["critic_steps"] += 1
    fps = frames / (time.perf_counter() - start)
    envs.close()
    return {"fps": fps, "frames": frames, "returns": returns, **counts}


def main(argv=None) -> None:
    report("bare_ppo", train(parse(argv)))


if __name__ == "__main__":
    main()

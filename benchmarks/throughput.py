"""Env frames per second: pgtorchrl against a plain-torch loop with the same policy and batch.

All measured in one process, the compared things alternated, medians over repeats:

- raw stepping: the torch CartPole (``TorchCartPoleEnv.step_tensors``) and gymnasium's
  ``SyncVectorEnv`` with random actions;
- collection: pgtorchrl's ``native`` collector and TorchRL's ``Collector`` over the same torch env,
  against a plain-torch rollout (the MLP policy sampled by hand on the same env tensors);
- collection + training: pgtorchrl's loop body (collector, GAE module, ReinforceLoss update, the
  functions ``pgtorchrl.trainer.train`` runs; no MLflow) against a plain-torch rollout + GAE +
  policy-gradient update written here, doing the same update as the spec (two Adams, clipping,
  5 critic steps per batch).

The figure that matters is pgtorchrl / plain-torch.

    python benchmarks/throughput.py [--envs 8] [--steps 32] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import gymnasium as gym
import torch
from torch import nn

from pgtorchrl.cartpole import TorchCartPoleEnv
from pgtorchrl.pipeline import build_pipeline
from pgtorchrl.spec import load_spec
from pgtorchrl.trainer import update

FRAMES = 20_000
VALUE_STEPS = 5  # vpg_cartpole_torch.yaml's train.value_steps (main() checks it)


def raw_torch(envs: int) -> float:
    env = TorchCartPoleEnv(envs)
    env.reset_tensors(None)
    steps = FRAMES // envs
    start = time.perf_counter()
    for _ in range(steps):
        action = torch.nn.functional.one_hot(torch.randint(2, (envs,)), 2)
        out = env.step_tensors(action)
        if out["done"].any():
            env.reset_tensors(out["done"].reshape(-1))
    return steps * envs / (time.perf_counter() - start)


def raw_gym(envs: int) -> float:
    venv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(envs)])
    venv.reset(seed=0)
    steps = FRAMES // envs
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(venv.action_space.sample())
    return steps * envs / (time.perf_counter() - start)


class PlainTorch:
    """The reference: the same 4-64-64-2 tanh policy and 4-64-64-1 critic, hand-written loop,
    doing the update ``vpg_cartpole_torch.yaml`` asks for: GAE(0.99, 0.95) normalized, Adam for
    the actor and for the critic, gradient norms clipped to 1, 5 critic steps per batch (the
    first on the joint backward pass)."""

    def __init__(self, envs: int, steps: int):
        self.env = TorchCartPoleEnv(envs)
        self.obs = self.env.reset_tensors(None)["observation"]
        self.steps = steps
        self.pi = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        self.v = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        self.pi_opt = torch.optim.Adam(self.pi.parameters(), lr=3e-3)
        self.v_opt = torch.optim.Adam(self.v.parameters(), lr=3e-3)

    @torch.no_grad()
    def rollout(self):
        obs, acts, rews, dones, terms, next_obs = [], [], [], [], [], []
        for _ in range(self.steps):
            a = torch.distributions.Categorical(logits=self.pi(self.obs)).sample()
            out = self.env.step_tensors(torch.nn.functional.one_hot(a, 2))
            obs.append(self.obs)
            acts.append(a)
            rews.append(out["reward"].squeeze(-1))
            dones.append(out["done"].squeeze(-1))
            terms.append(out["terminated"].squeeze(-1))
            next_obs.append(out["observation"])
            self.obs = out["observation"]
            if out["done"].any():
                self.obs = self.env.reset_tensors(out["done"].reshape(-1))["observation"]
        return [torch.stack(x) for x in (obs, acts, rews, dones, terms, next_obs)]

    def train_step(self):
        obs, acts, rews, dones, terms, next_obs = self.rollout()
        with torch.no_grad():
            v, nv = self.v(obs).squeeze(-1), self.v(next_obs).squeeze(-1)
            delta = rews + 0.99 * nv * (~terms) - v
            adv, running = torch.zeros_like(rews), torch.zeros_like(rews[0])
            for t in range(len(rews) - 1, -1, -1):
                running = delta[t] + 0.99 * 0.95 * (~dones[t]) * (running if t < len(rews) - 1 else 0)
                adv[t] = running
            target = adv + v
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        logp = torch.distributions.Categorical(logits=self.pi(obs)).log_prob(acts)
        loss = -(logp * adv).mean() + ((self.v(obs).squeeze(-1) - target) ** 2).mean()
        self.pi_opt.zero_grad()
        self.v_opt.zero_grad()
        loss.backward()
        for net, opt in ((self.pi, self.pi_opt), (self.v, self.v_opt)):
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        for _ in range(VALUE_STEPS - 1):
            self.v_opt.zero_grad()
            ((self.v(obs).squeeze(-1) - target) ** 2).mean().backward()
            nn.utils.clip_grad_norm_(self.v.parameters(), 1.0)
            self.v_opt.step()


def timed(fn, frames_per_call: int, calls: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return frames_per_call * calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=32, help="steps per env per batch")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    batch = args.envs * args.steps
    calls = max(1, FRAMES // batch)
    overrides = [f"env.num_envs={args.envs}", f"collector.frames_per_batch={batch}", f"train.total_frames={10**9}"]
    spec = load_spec("pipelines/vpg_cartpole_torch.yaml", overrides)
    p = build_pipeline(spec)
    assert (spec.train.value_steps, spec.train.max_grad_norm) == (VALUE_STEPS, 1.0), "PlainTorch must do the spec's update"
    native = iter(p.make_collector())
    from torchrl.collectors import Collector

    torchrl_collector = iter(Collector(p.env, p.actor, frames_per_batch=batch, total_frames=-1,
                                       auto_register_policy_transforms=False))
    plain = PlainTorch(args.envs, args.steps)

    def pgtorchrl_train():
        b = next(native)
        p.advantage(b)
        update(p, b, 1, 0)

    cases = {
        "raw step: torch CartPole": lambda: raw_torch(args.envs),
        "raw step: gymnasium SyncVectorEnv": lambda: raw_gym(args.envs),
        "collect: plain torch": lambda: timed(plain.rollout, batch, calls),
        "collect: pgtorchrl native": lambda: timed(lambda: next(native), batch, calls),
        "collect: TorchRL Collector (same env)": lambda: timed(lambda: next(torchrl_collector), batch, calls),
        "collect+train: plain torch": lambda: timed(plain.train_step, batch, calls),
        "collect+train: pgtorchrl": lambda: timed(pgtorchrl_train, batch, calls),
    }
    results = {name: [] for name in cases}
    for _ in range(args.repeats):  # alternate the compared things within every repeat
        for name, case in cases.items():
            results[name].append(case())
    median = {name: statistics.median(v) for name, v in results.items()}
    print(f"{args.envs} envs x {args.steps} steps per batch, 4-64-64-2 policy, median of {args.repeats} repeats, 1 thread")
    for name, fps in median.items():
        print(f"  {name:<40} {fps:>12,.0f} frames/s")
    print(f"  pgtorchrl / plain torch, collection:          {median['collect: pgtorchrl native'] / median['collect: plain torch']:.2f}")
    print(f"  pgtorchrl / plain torch, collection+training: {median['collect+train: pgtorchrl'] / median['collect+train: plain torch']:.2f}")


if __name__ == "__main__":
    main()

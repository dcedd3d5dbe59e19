"""Env frames per second: pgtorchrl against a plain-torch loop with the same policy and batch.

All measured in one process, the compared things alternated, medians over repeats:

- raw stepping: the torch CartPole (``TorchCartPoleEnv.step_tensors``) and gymnasium's
  ``SyncVectorEnv`` with random actions;
- collection, for each of two env kinds (CartPole-v1 written in torch, ``vpg_cartpole_torch.yaml``;
  gymnasium's CartPole-v1, ``vpg_cartpole.yaml``): pgtorchrl's ``native`` collector and TorchRL's
  ``Collector`` (over the same torch env; over ``GymWrapper`` for gymnasium), against a
  plain-torch rollout (the MLP policy sampled by hand; the torch env's tensors, or a list of
  gymnasium envs stepped in a loop);
- collection + training: pgtorchrl's loop body (collector, GAE module, ReinforceLoss update, the
  functions ``pgtorchrl.trainers.trainer.train`` runs; no MLflow) against a plain-torch rollout + GAE +
  policy-gradient update written here, doing the same update as the spec (two Adams, clipping,
  5 critic steps per batch).

The figures that matter are pgtorchrl / plain-torch, printed for each env kind.

With ``--device cuda`` everything (env, policy, critic, update) runs on the GPU and only the torch
CartPole is measured (gymnasium's envs are CPU code); the clock reads after a device sync. At GPU
scale, many envs and few steps per batch, e.g.:

    python benchmarks/throughput.py [--envs 8] [--steps 32] [--repeats 5]
    python benchmarks/throughput.py --device cuda --envs 262144 --steps 16 --frames 20000000
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import warnings

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from pgtorchrl.envs.custom.cartpole import TorchCartPoleEnv
from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec
from pgtorchrl.trainers.trainer import update

VALUE_STEPS = 5  # the pipelines' train.value_steps (cases_for() checks it)


def clock(device: torch.device) -> float:
    """Seconds, read once the device has finished the work queued so far."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def raw_torch(envs: int, frames: int, device: torch.device) -> float:
    env = TorchCartPoleEnv(envs, device=device)
    env.reset_tensors(None)
    steps = max(1, frames // envs)
    start = clock(device)
    for _ in range(steps):
        action = torch.nn.functional.one_hot(torch.randint(2, (envs,), device=device), 2)
        env.reset_finished(env.step_tensors(action))
    return steps * envs / (clock(device) - start)


def raw_gym(envs: int, frames: int) -> float:
    venv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(envs)])
    venv.reset(seed=0)
    steps = max(1, frames // envs)
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(venv.action_space.sample())
    return steps * envs / (time.perf_counter() - start)


class GymLoop:
    """The plain reference's gymnasium envs: ``gym.make`` envs in a list, stepped in a loop and
    reset as they end, observations stacked by numpy (what a hand-written loop does)."""

    def __init__(self, envs: int):
        self.envs = [gym.make("CartPole-v1") for _ in range(envs)]
        self.obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(self.envs)])

    def reset_tensors(self, mask):
        for i in range(len(self.envs)) if mask is None else mask.nonzero().flatten().tolist():
            self.obs[i] = self.envs[i].reset()[0]
        return {"observation": torch.from_numpy(self.obs.copy())}

    def step_tensors(self, action):
        steps = [env.step(a) for env, a in zip(self.envs, action.argmax(-1).tolist())]
        self.obs = np.stack([s[0] for s in steps])
        terminated = torch.tensor([s[2] for s in steps]).unsqueeze(-1)
        done = terminated | torch.tensor([s[3] for s in steps]).unsqueeze(-1)
        reward = torch.tensor([s[1] for s in steps], dtype=torch.float32).unsqueeze(-1)
        return {
            "observation": torch.from_numpy(self.obs.copy()),
            "reward": reward,
            "done": done,
            "terminated": terminated,
        }


class PlainTorch:
    """The reference: the same 4-64-64-2 tanh policy and 4-64-64-1 critic, hand-written loop,
    doing the update the pipelines ask for: GAE(0.99, 0.95) normalized, Adam for the actor and
    for the critic, gradient norms clipped to 1, 5 critic steps per batch (the first on the joint
    backward pass). ``env``: a :class:`TorchCartPoleEnv` or a :class:`GymLoop`."""

    def __init__(self, env, steps: int, device: torch.device):
        self.env = env
        self.obs = self.env.reset_tensors(None)["observation"]
        self.steps = steps
        self.pi = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2)).to(device)
        self.v = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)).to(device)
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
            if self.obs.device.type != "cpu" or out["done"].any():  # on a GPU, masked without asking
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


def timed(fn, frames_per_call: int, calls: int, device: torch.device) -> float:
    fn()  # warm-up
    start = clock(device)
    for _ in range(calls):
        fn()
    return frames_per_call * calls / (clock(device) - start)


def cases_for(pipeline: str, args, torchrl_env) -> tuple[dict, str]:
    """The compared collection and training cases over one pipeline's env kind; ``torchrl_env``
    builds the env TorchRL's Collector steps."""
    batch = args.envs * args.steps
    calls = max(1, args.frames // batch)
    overrides = [
        f"env.num_envs={args.envs}",
        f"collector.frames_per_batch={batch}",
        f"train.total_frames={10**12}",
        f"device={args.device}",
    ]
    spec = load_spec(pipeline, overrides)
    p = build_pipeline(spec)
    assert (spec.train.value_steps, spec.train.max_grad_norm) == (VALUE_STEPS, 1.0), (
        "PlainTorch must do the spec's update"
    )
    assert spec.collector.name == "native", pipeline
    native = iter(p.make_collector())
    from torchrl.collectors import Collector

    torchrl_collector = iter(
        Collector(
            torchrl_env(p), p.actor, frames_per_batch=batch, total_frames=-1, auto_register_policy_transforms=False
        )
    )
    kind = "torch env" if spec.env.name == "torch_cartpole" else "gymnasium"
    plain_env = TorchCartPoleEnv(args.envs, device=args.device) if kind == "torch env" else GymLoop(args.envs)
    plain = PlainTorch(plain_env, args.steps, args.device)

    def pgtorchrl_train():
        b = next(native)
        p.advantage(b)
        update(p, b, 1, 0)

    cases = {
        f"collect, {kind}: plain torch": plain.rollout,
        f"collect, {kind}: pgtorchrl native": lambda: next(native),
        f"collect, {kind}: TorchRL Collector": lambda: next(torchrl_collector),
        f"collect+train, {kind}: plain torch": plain.train_step,
        f"collect+train, {kind}: pgtorchrl": pgtorchrl_train,
    }
    return {name: functools.partial(timed, fn, batch, calls, args.device) for name, fn in cases.items()}, kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=32, help="steps per env per batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=20_000, help="frames per timing (at least one batch)")
    parser.add_argument(
        "--device", type=torch.device, default="cpu", help="cpu or cuda (cuda: the torch CartPole only)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from pgtorchrl.envs.gym import make_gym_env

    device = args.device
    cases = {"raw step: torch CartPole": lambda: raw_torch(args.envs, args.frames, device)}
    pipelines = [("pipelines/vpg_cartpole_torch.yaml", lambda p: p.env)]  # TorchRL's Collector: the same torch env
    if device.type == "cpu":  # gymnasium's envs step on the CPU
        cases["raw step: gymnasium SyncVectorEnv"] = lambda: raw_gym(args.envs, args.frames)
        pipelines.append(
            ("pipelines/vpg_cartpole.yaml", lambda p: make_gym_env("CartPole-v1", args.envs))
        )  # GymWrapper
    kinds = []
    for pipeline, torchrl_env in pipelines:
        more, kind = cases_for(pipeline, args, torchrl_env)
        cases.update(more)
        kinds.append(kind)
    results = {name: [] for name in cases}
    for _ in range(args.repeats):  # alternate the compared things within every repeat
        for name, case in cases.items():
            results[name].append(case())
    median = {name: statistics.median(v) for name, v in results.items()}
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU, 1 thread"
    print(
        f"{args.envs} envs x {args.steps} steps per batch, 4-64-64-2 policy, median of {args.repeats} repeats, {where}"
    )
    for name, fps in median.items():
        print(f"  {name:<48} {fps:>12,.0f} frames/s")
    for kind in kinds:
        collect = median[f"collect, {kind}: pgtorchrl native"] / median[f"collect, {kind}: plain torch"]
        train = median[f"collect+train, {kind}: pgtorchrl"] / median[f"collect+train, {kind}: plain torch"]
        print(f"  pgtorchrl / plain torch, {kind}: collection {collect:.2f}, collection+training {train:.2f}")


if __name__ == "__main__":
    main()

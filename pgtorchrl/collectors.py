"""Whole-episode collection: one complete episode per env, from a fresh reset.

TorchRL's ``Collector(trajs_per_batch=N)`` yields complete episodes too, but it fills a batch
with whichever episodes finish first and carries unfinished ones over to later batches. For
estimators whose unbiasedness rests on sampling episodes from the *current* policy (the
slides' Monte Carlo estimate over L trajectories, Sutton & Barto's one-episode updates), this
collector takes exactly the first episode of every env: L i.i.d. episodes of the current
policy, padded to the longest, with TorchRL's ``("collector", "mask")`` marking real steps.
"""
from __future__ import annotations

from typing import Iterator

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase, ExplorationType, set_exploration_type

from pgtorchrl.models import categorical_logits_net, log_softmax
from pgtorchrl.native import TorchNativeEnv

__all__ = ["first_episodes", "EpisodeCollector", "NativeCollector"]

MASK_KEY = ("collector", "mask")


@torch.no_grad()
def first_episodes(
    env: EnvBase,
    policy: TensorDictModuleBase,
    max_steps: int = 100_000,
    exploration: ExplorationType = ExplorationType.RANDOM,
) -> TensorDictBase:
    """Resets ``env`` and steps it until every env has finished its first episode.

    Returns a ``[*env.batch_size, T]`` batch (``T`` = the longest episode) with
    ``("collector", "mask")`` true on each env's first-episode steps. An episode still running
    after ``max_steps`` is cut there and marked truncated (``("next", "truncated")``), never
    terminated.
    """
    net = categorical_logits_net(policy) if isinstance(env, TorchNativeEnv) else None
    if net is not None:
        batch, finished = _lean_rollout(env, net, max_steps, exploration)
    else:
        batch, finished = _rollout(env, policy, max_steps, exploration)
    done = batch.get(("next", "done")).squeeze(-1)
    mask = (done.cumsum(-1) - done.long()) == 0  # up to and including the first done
    batch.set(MASK_KEY, mask)
    if not finished.all():  # cut at max_steps: a truncation, as a time limit would be
        last = (~finished).reshape(env.batch_size)
        for key in ("done", "truncated"):
            flags = batch.get(("next", key))
            flags[..., -1, :] |= last.unsqueeze(-1)
            batch.set(("next", key), flags)
    return batch


def _rollout(env: EnvBase, policy, max_steps: int, exploration: ExplorationType):
    """The general path: TorchRL's ``step_and_maybe_reset`` and the policy module."""
    n = env.batch_size.numel()
    finished = torch.zeros(n, dtype=torch.bool, device=env.device)
    steps = []
    td = env.reset()
    with set_exploration_type(exploration):
        for _ in range(max_steps):
            td, td_next = env.step_and_maybe_reset(policy(td))
            steps.append(td)
            finished = finished | td.get(("next", "done")).reshape(n)
            if finished.all():
                break
            td = td_next
    return torch.stack(steps, dim=len(env.batch_size)), finished


def _sample(net, obs: dict, exploration: ExplorationType) -> dict[str, torch.Tensor]:
    """The categorical policy on plain tensors: ``logits``, a one-hot ``action`` (a sample via
    the Gumbel-max trick, or the mode) and its ``action_log_prob``."""
    logits = net.module(*(obs[k] for k in net.in_keys))
    log_probs = log_softmax(logits)
    if exploration == ExplorationType.RANDOM:
        index = (log_probs - torch.empty_like(log_probs).exponential_().log()).argmax(-1)
    else:
        index = logits.argmax(-1)
    return {
        "logits": logits,
        "action": torch.nn.functional.one_hot(index, logits.shape[-1]),
        "action_log_prob": log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1),
    }


def _record_step(env: TorchNativeEnv, row: dict, columns: dict) -> dict[str, torch.Tensor]:
    """Steps ``env`` with ``row["action"]`` (``row``: the observation and the policy's
    outputs), appends the row and its ``("next", ...)`` entries to ``columns`` and returns what
    the step wrote."""
    nxt = env.step_tensors(row["action"])
    row.update({("next", k): v for k, v in nxt.items()})
    for key, value in row.items():
        columns.setdefault(key, []).append(value)
    return nxt


def _stack(columns: dict, batch_size, device) -> TensorDictBase:
    steps = len(columns["action"])
    dim = len(batch_size)
    return TensorDict(
        {key: torch.stack(values, dim) for key, values in columns.items()}, batch_size=(*batch_size, steps), device=device
    )


def _lean_rollout(env: TorchNativeEnv, net, max_steps: int, exploration: ExplorationType):
    """The fast path for a :class:`TorchNativeEnv` and a categorical policy: plain tensors per
    step (the policy's logits network, :func:`_sample`, the env's ``step_tensors``), one
    TensorDict per batch, with the keys the ``ProbabilisticActor`` and TorchRL's step write."""
    n = env.batch_size.numel()
    finished = torch.zeros(n, dtype=torch.bool, device=env.device)
    columns: dict = {}
    obs = env.reset_tensors(None)
    for _ in range(max_steps):
        nxt = _record_step(env, {**obs, **_sample(net, obs, exploration)}, columns)
        finished = finished | nxt["done"].reshape(n)
        if finished.all():
            break
        obs = {k: v for k, v in nxt.items() if k != "reward"}
    return _stack(columns, env.batch_size, env.device), finished


class NativeCollector:
    """Fixed-frame batches from a :class:`TorchNativeEnv` on the tensor fast path.

    Like TorchRL's ``Collector`` (same keys, ``[num_envs, T]`` batches, episodes carried across
    batches, finished envs reset as they end), minus its per-step TensorDict work: the policy
    must be a categorical ``ProbabilisticActor`` (others fall back to calling the actor on a
    TensorDict each step).

    Args:
        env: the batched torch env.
        policy: the actor, sampled with ``ExplorationType.RANDOM``.
        frames_per_batch: frames per batch (a multiple of the number of envs).
        total_frames: the frame budget.
    """

    def __init__(self, env: TorchNativeEnv, policy: TensorDictModuleBase, frames_per_batch: int, total_frames: int):
        self.env, self.policy = env, policy
        self.steps = frames_per_batch // env.batch_size.numel()
        self.total_frames = total_frames
        self.net = categorical_logits_net(policy)
        self._obs: dict | None = None
        self.frames = 0

    def _act(self, obs: dict) -> dict:
        if self.net is not None:
            return _sample(self.net, obs, ExplorationType.RANDOM)
        td = TensorDict(dict(obs), batch_size=self.env.batch_size, device=self.env.device)
        with set_exploration_type(ExplorationType.RANDOM):
            out = self.policy(td)
        return {k: out.get(k) for k in self.policy.out_keys}

    @torch.no_grad()
    def __iter__(self) -> Iterator[TensorDictBase]:
        env = self.env
        if self._obs is None:
            self._obs = env.reset_tensors(None)
        while self.frames < self.total_frames:
            columns: dict = {}
            obs = self._obs
            for _ in range(self.steps):
                nxt = _record_step(env, {**obs, **self._act(obs)}, columns)
                done = nxt["done"].reshape(-1)
                obs = {k: v for k, v in nxt.items() if k != "reward"}
                if done.any():  # finished envs start over; ("next", ...) keeps their final state
                    obs = env.reset_tensors(done)  # every env's current observation
            self._obs = obs
            self.frames += self.steps * env.batch_size.numel()
            yield _stack(columns, env.batch_size, env.device)

    def shutdown(self) -> None:
        """Nothing to release (same signature as TorchRL's collectors)."""


class EpisodeCollector:
    """Yields :func:`first_episodes` batches until ``total_frames`` real env steps are collected.

    Args:
        env: a batched env; each batch holds one episode per env.
        policy: the (stochastic) actor, sampled with ``ExplorationType.RANDOM``.
        total_frames: the frame budget (counting real steps, not padding).
        max_steps: the longest episode collected (longer ones are cut, marked truncated).
    """

    def __init__(self, env: EnvBase, policy: TensorDictModuleBase, total_frames: int, max_steps: int = 100_000):
        self.env, self.policy = env, policy
        self.total_frames, self.max_steps = total_frames, max_steps
        self.frames = 0

    def __iter__(self) -> Iterator[TensorDictBase]:
        while self.frames < self.total_frames:
            batch = first_episodes(self.env, self.policy, self.max_steps)
            self.frames += int(batch.get(MASK_KEY).sum())
            yield batch

    def shutdown(self) -> None:
        """Nothing to release (same signature as TorchRL's collectors)."""

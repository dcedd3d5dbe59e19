"""Whole-episode collection: one complete episode per env, from a fresh reset.

TorchRL's ``Collector(trajs_per_batch=N)`` yields complete episodes too, but it fills a batch
with whichever episodes finish first and carries unfinished ones over to later batches. For
estimators whose unbiasedness rests on sampling episodes from the *current* policy (the
slides' Monte Carlo estimate over L trajectories, Sutton & Barto's one-episode updates), this
collector takes exactly the first episode of every env: L i.i.d. episodes of the current
policy, padded to the longest, with TorchRL's ``("collector", "mask")`` marking real steps.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase, ExplorationType, set_exploration_type

from pgtorchrl.envs.native import TorchNativeEnv, policy_inputs
from pgtorchrl.modules.fast_policies import PolicyStep, categorical_logits_net

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
    if isinstance(env, TorchNativeEnv) and categorical_logits_net(policy) is not None:
        batch, finished = _lean_rollout(env, policy, max_steps, exploration)
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


def _stack(steps: list[tuple[dict, dict, dict]], batch_size, device, act: PolicyStep) -> TensorDictBase:
    """One ``[*batch_size, T]`` TensorDict from ``T`` steps of ``(observation, policy output,
    next)`` tensor dicts, with the keys TorchRL's step writes (the next ones under ``"next"``)
    and, for the fast path's steps, ``action_log_prob`` computed over the whole batch."""
    dim = len(batch_size)
    data: dict[Any, torch.Tensor] = {}
    for part, prefix in ((0, None), (1, None), (2, "next")):
        for key in steps[0][part]:
            data[key if prefix is None else (prefix, key)] = torch.stack([step[part][key] for step in steps], dim)
    log_prob = act.log_prob(data)  # one call for all steps
    if log_prob is not None:
        data["action_log_prob"] = log_prob
    return TensorDict(data, batch_size=(*batch_size, len(steps)), device=device)


_NOISE_STEPS = 64  # steps of Gumbel noise drawn at once by the episode collector


def _lean_rollout(env: TorchNativeEnv, policy, max_steps: int, exploration: ExplorationType):
    """The fast path for a :class:`TorchNativeEnv` and a categorical policy: plain tensors per
    step (:class:`~pgtorchrl.modules.fast_policies.PolicyStep`, the env's ``step_tensors``), one
    TensorDict per batch, with the keys the ``ProbabilisticActor`` and TorchRL's step write."""
    n = env.batch_size.numel()
    finished = torch.zeros(n, dtype=torch.bool, device=env.device)
    act = PolicyStep(policy, min(_NOISE_STEPS, max_steps), exploration, env.batch_size, env.device)
    steps = []
    obs = env.reset_tensors(None)
    for _ in range(max_steps):
        out = act(obs)
        nxt = env.step_tensors(out["action"])
        steps.append((obs, out, nxt))
        finished.logical_or_(nxt["done"].reshape(n))
        if finished.all():
            break
        obs = policy_inputs(nxt)
    return _stack(steps, env.batch_size, env.device, act), finished


class NativeCollector:
    """Fixed-frame batches from a :class:`TorchNativeEnv` on the tensor fast path.

    Like TorchRL's ``Collector`` (same keys, ``[num_envs, T]`` batches, episodes carried across
    batches, finished envs reset as they end), minus its per-step TensorDict work: the policy
    must be a categorical or diagonal Gaussian ``ProbabilisticActor``
    (:mod:`pgtorchrl.modules.fast_policies`; others fall back to calling the actor on a TensorDict
    each step).

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
        self._obs: dict | None = None
        self.frames = 0

    @torch.no_grad()
    def __iter__(self) -> Iterator[TensorDictBase]:
        env = self.env
        if self._obs is None:
            self._obs = env.reset_tensors(None)
        while self.frames < self.total_frames:
            # one batch's noise, drawn at its start: a checkpoint between batches resumes exactly
            act = PolicyStep(self.policy, self.steps, ExplorationType.RANDOM, env.batch_size, env.device)
            steps = []
            obs = self._obs
            for _ in range(self.steps):
                out = act(obs)
                nxt = env.step_tensors(out["action"])
                steps.append((obs, out, nxt))
                obs = env.reset_finished(nxt)  # ("next", ...) keeps the finished envs' final state
            self._obs = obs
            self.frames += self.steps * env.batch_size.numel()
            yield _stack(steps, env.batch_size, env.device, act)

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

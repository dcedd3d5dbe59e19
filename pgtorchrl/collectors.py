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
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase, ExplorationType, set_exploration_type

__all__ = ["first_episodes", "EpisodeCollector"]

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
    td = env.reset()
    n = env.batch_size.numel()
    finished = torch.zeros(n, dtype=torch.bool, device=env.device)
    steps = []
    with set_exploration_type(exploration):
        for _ in range(max_steps):
            td = policy(td)
            td, td_next = env.step_and_maybe_reset(td)
            steps.append(td)
            finished = finished | td.get(("next", "done")).reshape(n)
            if finished.all():
                break
            td = td_next
    batch = torch.stack(steps, dim=len(env.batch_size))
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

    def __iter__(self) -> Iterator[TensorDictBase]:
        frames = 0
        while frames < self.total_frames:
            batch = first_episodes(self.env, self.policy, self.max_steps)
            frames += int(batch.get(MASK_KEY).sum())
            yield batch

    def shutdown(self) -> None:
        """Nothing to release (same signature as TorchRL's collectors)."""

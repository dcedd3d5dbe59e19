"""Deterministic evaluation: the policy's mode, one episode per env of a batched env."""
from __future__ import annotations

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase, ExplorationType

from pgtorchrl.collectors import MASK_KEY, first_episodes

__all__ = ["evaluate", "episode_stats"]


def evaluate(env: EnvBase, policy: TensorDictModuleBase, max_steps: int = 100_000) -> torch.Tensor:
    """Runs the deterministic policy (the mode of pi) for one episode in every env of ``env``.

    Returns the undiscounted return of each env's first episode (shape ``[num_envs]``). An
    episode still running after ``max_steps`` steps is cut there and counted as it stands.
    """
    batch = first_episodes(env, policy, max_steps, exploration=ExplorationType.DETERMINISTIC)
    reward = batch.get(("next", "reward")).squeeze(-1) * batch.get(MASK_KEY)
    return reward.sum(-1).reshape(-1)


def episode_stats(batch) -> dict[str, float]:
    """``rollout/episode_return`` and ``rollout/episode_length``: means over the episodes that
    ended in a collected batch (empty when none ended)."""
    done = batch.get(("next", "done"))
    if not done.any():
        return {}
    return {
        "rollout/episode_return": batch.get(("next", "episode_reward"))[done].float().mean().item(),
        "rollout/episode_length": batch.get(("next", "step_count"))[done].float().mean().item(),
        "rollout/episodes": float(done.sum().item()),
    }

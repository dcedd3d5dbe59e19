"""Deterministic evaluation: the policy's mode, one episode per env of a batched env."""

from __future__ import annotations

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase, ExplorationType

from pgtorchrl.collectors.rollout import MASK_KEY, first_episodes

__all__ = ["evaluate", "episode_stats"]


def evaluate(env: EnvBase, policy: TensorDictModuleBase, max_steps: int = 100_000) -> torch.Tensor:
    """Runs the deterministic policy (the mode of pi) for one episode in every env of ``env``.

    Returns the undiscounted return of each env's first episode (shape ``[num_envs]``): the
    ``("next", "episode_reward")`` of its last step where the env writes one (``RewardSum``
    before any reward transform: the task's own return), else the sum of its rewards. An
    episode still running after ``max_steps`` steps is cut there and counted as it stands.
    """
    batch = first_episodes(env, policy, max_steps, exploration=ExplorationType.DETERMINISTIC)
    mask = batch.get(MASK_KEY)
    totals = batch.get(("next", "episode_reward"), None)
    if totals is None:
        reward = batch.get(("next", "reward")).squeeze(-1) * mask
        return reward.sum(-1).reshape(-1)
    last = (mask.sum(-1, keepdim=True) - 1).clamp_min(0)
    return totals.squeeze(-1).gather(-1, last).reshape(-1)


def episode_stats(batch) -> dict[str, float]:
    """``rollout/episode_return`` (with its standard error ``_se``) and ``rollout/episode_length``:
    means over the episodes that ended in a collected batch (empty when none ended); for
    categorical policies ``rollout/action_<i>_prob``, the mean probability of action ``i`` at
    the batch's first step, under the policy that collected it (the short corridor's
    ``P(right)`` is ``action_0``)."""
    done = batch.get(("next", "done"))
    mask = batch.get(MASK_KEY, None)
    if mask is not None:  # steps past an episode's end in a padded batch are not episodes
        done = done & mask.unsqueeze(-1)
    if not done.any():
        return {}
    returns = batch.get(("next", "episode_reward"))[done].float()
    stats = {
        "rollout/episode_return": returns.mean().item(),
        "rollout/episode_length": batch.get(("next", "step_count"))[done].float().mean().item(),
        "rollout/episodes": float(returns.numel()),
    }
    if returns.numel() > 1:
        stats["rollout/episode_return_se"] = (returns.std() / returns.numel() ** 0.5).item()
    logits = batch.get("logits", None)
    if logits is not None:  # categorical policies: the mean probability of each action at t = 0
        probs = torch.softmax(logits[..., 0, :].float(), -1).reshape(-1, logits.shape[-1]).mean(0)
        stats.update({f"rollout/action_{i}_prob": p for i, p in enumerate(probs.tolist())})
    return stats

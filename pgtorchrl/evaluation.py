"""Deterministic evaluation: the policy's mode, one episode per env of a batched env."""
from __future__ import annotations

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase, ExplorationType, set_exploration_type

__all__ = ["evaluate", "episode_stats"]


@torch.no_grad()
def evaluate(env: EnvBase, policy: TensorDictModuleBase, max_steps: int = 100_000) -> torch.Tensor:
    """Runs the deterministic policy until every env of ``env`` has finished one episode.

    Returns the undiscounted return of each env's first episode (shape ``[num_envs]``). An
    episode still running after ``max_steps`` steps is cut there and counted as it stands.
    """
    td = env.reset()
    n = env.batch_size.numel()
    returns = torch.zeros(n, device=env.device)
    finished = torch.zeros(n, dtype=torch.bool, device=env.device)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        for _ in range(max_steps):
            td = policy(td)
            td, td_next = env.step_and_maybe_reset(td)
            returns += td.get(("next", "reward")).reshape(n) * ~finished
            finished |= td.get(("next", "done")).reshape(n)
            if finished.all():
                break
            td = td_next
    return returns


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

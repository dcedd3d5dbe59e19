"""Reward normalization by the running scale of the discounted return, as a TorchRL transform.

stable-baselines3's ``VecNormalize`` (what rl-baselines3-zoo's ``normalize: true`` turns on),
gymnasium's ``NormalizeReward`` and CleanRL divide the learner's reward by the running standard
deviation of each env's discounted return: the scale of the returns the critic fits becomes about
one whatever the task's reward scale. TorchRL has no such transform: ``VecNormV2`` standardizes
the reward itself and ``RewardScaling`` uses a fixed scale. ``gym_native`` does it on its own
numpy arrays (``normalize_rewards``); :class:`NormalizeReward` is the same statistic
(:class:`~pgtorchrl.envs.normalization.RunningRewardScale`, one code path for both) for env
``gym``'s TorchRL transforms, where the recurrent policies and the image envs run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.envs import Transform

from pgtorchrl.envs.normalization import RunningRewardScale

__all__ = ["NormalizeReward"]


class NormalizeReward(Transform):
    """The learner's ``reward`` divided by the running standard deviation of each env's
    ``gamma``-discounted return, clipped to ``[-clip, clip]`` when ``clip`` is given.

    Each env's return is ``G <- gamma * G * (1 - terminated) + r`` (gymnasium's
    ``NormalizeReward``); every ``G`` feeds one running variance (baselines' ``RunningMeanStd``),
    and the reward becomes ``r / sqrt(var + eps)``. Append it after the env's ``RewardSum`` (env
    ``gym``'s ``transforms`` are): ``episode_reward`` and the logged returns stay the task's. The
    statistics and the returns in flight are the module's extra state (``state_dict``): they travel
    in checkpoints, so a resumed run scales its rewards as the uninterrupted one. :meth:`freeze`
    stops them moving. The policy never sees rewards, so nothing of it goes with a trained policy.

    Args:
        gamma: the return's discount (stable-baselines3 and rl-zoo use the algorithm's gamma).
        eps: added to the variance (gymnasium's and stable-baselines3's 1e-8).
        clip: bound on the scaled reward (stable-baselines3 and CleanRL: 10), or ``None``.

    Examples:
        >>> from torchrl.envs import GymEnv, TransformedEnv
        >>> env = TransformedEnv(GymEnv("Pendulum-v1"), NormalizeReward(gamma=0.9, clip=10.0))
        >>> data = env.rollout(5)
        >>> data["next", "reward"].shape
        torch.Size([5, 1])
    """

    def __init__(self, gamma: float = 0.99, eps: float = 1e-8, clip: float | None = None):
        super().__init__(in_keys=["reward"], out_keys=["reward"])
        self.gamma, self.eps, self.clip = gamma, eps, clip
        self._scale = RunningRewardScale(1, gamma, eps, clip)  # its returns sized by the batch stepped

    def _returns_for(self, num_envs: int) -> None:
        """One return per env: statistics loaded into, or evaluated on, a batch of another size
        start that batch's returns at zero."""
        if len(self._scale.returns) != num_envs:
            self._scale.returns = np.zeros((num_envs, 1), dtype=np.float64)

    def _step(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> TensorDictBase:
        reward = next_tensordict.get("reward")
        rows = reward.reshape(-1, 1)
        terminated = next_tensordict.get("terminated", torch.zeros_like(rows, dtype=torch.bool)).reshape(-1, 1)
        self._returns_for(rows.shape[0])
        scaled = self._scale(rows.detach().cpu().numpy().astype(np.float64), terminated.cpu().numpy())
        next_tensordict.set("reward", torch.from_numpy(scaled).to(reward).reshape(reward.shape))
        return next_tensordict

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Offline (a replay of stored data) it leaves rewards as they are: the statistic belongs to
        the envs' own steps, in order."""
        return tensordict

    def freeze(self) -> None:
        """Stops the statistics from moving (evaluation)."""
        self._scale.stats.freeze()

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        return self._scale.state_dict()

    def set_extra_state(self, state: Any) -> None:
        self._returns_for(int(state["returns"].shape[0]))
        self._scale.load_state_dict(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gamma={self.gamma}, eps={self.eps}, clip={self.clip})"

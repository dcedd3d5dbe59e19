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
        self._scale: RunningRewardScale | None = None  # sized by the first step's batch
        self._frozen = False

    def _scale_for(self, num_envs: int) -> RunningRewardScale:
        if self._scale is None:
            self._scale = RunningRewardScale(num_envs, self.gamma, self.eps, self.clip)
            if self._frozen:
                self._scale.stats.freeze()
        elif len(self._scale.returns) != num_envs:  # statistics loaded into a batch of another size
            self._scale.returns = np.zeros((num_envs, 1), dtype=np.float64)  # (evaluation's envs)
        return self._scale

    def _step(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> TensorDictBase:
        reward = next_tensordict.get("reward")
        terminated = next_tensordict.get("terminated", None)
        rows = reward.reshape(-1, 1)
        flags = torch.zeros_like(rows, dtype=torch.bool) if terminated is None else terminated.reshape(-1, 1)
        scale = self._scale_for(rows.shape[0])
        every = np.arange(rows.shape[0])
        scaled = scale(rows.detach().cpu().numpy().astype(np.float64), flags.cpu().numpy(), every)
        next_tensordict.set("reward", torch.from_numpy(scaled).to(reward).reshape(reward.shape))
        return next_tensordict

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Offline (a replay of stored data) it leaves rewards as they are: the statistic belongs to
        the envs' own steps, in order."""
        return tensordict

    def freeze(self) -> None:
        """Stops the statistics from moving (evaluation)."""
        self._frozen = True
        if self._scale is not None:
            self._scale.stats.freeze()

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        return {} if self._scale is None else self._scale.state_dict()

    def set_extra_state(self, state: Any) -> None:
        if not state:
            self._scale = None
            return
        self._scale_for(int(state["returns"].shape[0])).load_state_dict(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gamma={self.gamma}, eps={self.eps}, clip={self.clip})"

"""A gymnasium env whose action is several discrete choices at once: copy the shown target,
component by component, as a ``MultiDiscrete`` or a ``MultiBinary`` action.

At each of ``horizon`` steps a target is drawn: ``len(nvec)`` digits (digit ``i`` in
``range(nvec[i])``, shown as a ``MultiDiscrete`` observation, which the models read one-hot) or
``n_bits`` bits (a ``MultiBinary`` observation). The action names one value per component; the
reward is the fraction of components copied right. The best return is ``horizon``; uniformly
random choices earn ``horizon * mean(1 / nvec)`` (``horizon / 2`` for bits).
"""

from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np

__all__ = ["CopyEnv"]


class CopyEnv(gym.Env):
    """``pgtorchrl/CopyDigits-v0`` (``nvec``: a ``MultiDiscrete`` action) and
    ``pgtorchrl/CopyBits-v0`` (``n_bits``: a ``MultiBinary`` action): copy the shown target.

    >>> env = CopyEnv(nvec=[3, 5])
    >>> obs, _ = env.reset(seed=0)
    >>> _, reward, *_ = env.step(obs)
    >>> env.action_space, reward
    (MultiDiscrete([3 5]), 1.0)
    """

    metadata: dict = {"render_modes": []}

    def __init__(self, nvec: Sequence[int] | None = None, n_bits: int | None = None, horizon: int = 8):
        if (nvec is None) == (n_bits is None):
            raise ValueError("give nvec (a MultiDiscrete action) or n_bits (a MultiBinary action), one of the two")
        self.horizon = horizon
        if nvec is not None:
            self.nvec = np.asarray(nvec, dtype=np.int64)
            self.action_space: gym.Space = gym.spaces.MultiDiscrete(self.nvec)
        else:
            self.nvec = np.full(int(n_bits), 2, dtype=np.int64)  # type: ignore[arg-type]
            self.action_space = gym.spaces.MultiBinary(int(n_bits))  # type: ignore[arg-type]
        self.observation_space = self.action_space
        self._target = np.zeros(len(self.nvec), dtype=np.int64)
        self._t = 0

    def _observe(self) -> np.ndarray:
        self._target = self.np_random.integers(self.nvec)
        dtype = np.int8 if isinstance(self.action_space, gym.spaces.MultiBinary) else np.int64
        return self._target.astype(dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action).reshape(-1) == self._target))
        self._t += 1
        return self._observe(), reward, self._t >= self.horizon, False, {}

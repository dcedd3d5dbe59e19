"""A memory task: a cue shown once, at the first step, is needed ``length`` steps later.

``pgtorchrl/MemoryCue-v0``: at ``t = 0`` the observation shows one of ``num_cues`` cues (one-hot);
at ``t = 1 ... length - 1`` it shows nothing (zeros); at ``t = length`` a query flag asks for the
cue, and the action taken there ends the episode with reward +1 if it names the cue, -1 if not
(every earlier step: reward 0, the action has no effect). A policy without memory can only
guess at the query (expected return ``2 / num_cues - 1``: 0 for two cues); one that remembers
the cue earns 1. It is the T-maze of Bakker (2002) reduced to its memory: the corridor's
length is ``length``, a spec field (``env: {make_kwargs: {length: 10}}``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

__all__ = ["MemoryCueEnv"]


class MemoryCueEnv(gym.Env):
    """Remember the first observation's cue for ``length`` steps.

    Observation: ``num_cues + 1`` floats (the cue one-hot, then the query flag); action: one of
    ``num_cues``.

    >>> env = MemoryCueEnv(length=2)
    >>> obs, _ = env.reset(seed=0)
    >>> cue = int(obs[:2].argmax())
    >>> env.step(0)[0].tolist(), env.step(0)[0].tolist(), env.step(cue)[1:3]
    ([0.0, 0.0, 0.0], [0.0, 0.0, 1.0], (1.0, True))
    """

    metadata: dict = {"render_modes": []}

    def __init__(self, length: int = 10, num_cues: int = 2):
        if length < 1 or num_cues < 2:
            raise ValueError(f"length must be >= 1 and num_cues >= 2, got length={length}, num_cues={num_cues}")
        self.length, self.num_cues = length, num_cues
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(num_cues + 1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(num_cues)
        self.cue, self.t = 0, 0

    def _observe(self) -> np.ndarray:
        obs = np.zeros(self.num_cues + 1, dtype=np.float32)
        if self.t == 0:
            obs[self.cue] = 1.0
        if self.t == self.length:
            obs[-1] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.cue, self.t = int(self.np_random.integers(self.num_cues)), 0
        return self._observe(), {}

    def step(self, action):
        if self.t == self.length:  # the query: the answer ends the episode
            reward = 1.0 if int(action) == self.cue else -1.0
            return self._observe(), reward, True, False, {}
        self.t += 1
        return self._observe(), 0.0, False, False, {}

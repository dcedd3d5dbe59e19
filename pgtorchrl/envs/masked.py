"""A gymnasium env where most actions are illegal at every step, with the legal ones given as an
``action_mask`` observation (the convention of sb3-contrib's MaskablePPO and PettingZoo), after
sb3-contrib's ``InvalidActionEnvDiscrete``.

At each of ``horizon`` steps one of ``n_actions`` actions is the target, shown one-hot in
``observation``; ``action_mask`` marks ``n_legal`` legal actions, the target among them, the others
drawn at random. Choosing the target earns 1, any other action 0 (an illegal one too: it is
counted as ``rollout/invalid_actions`` by the trainer, not punished). The best return is
``horizon``; a uniformly random legal choice earns ``horizon / n_legal``, a uniformly random action
``horizon / n_actions``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

__all__ = ["MaskedChoiceEnv"]


class MaskedChoiceEnv(gym.Env):
    """``pgtorchrl/MaskedChoice-v0``: pick the shown target among the legal actions.

    >>> env = MaskedChoiceEnv(n_actions=5, n_legal=2)
    >>> obs, _ = env.reset(seed=0)
    >>> int(obs["action_mask"].sum()), bool(obs["action_mask"][obs["observation"].argmax()])
    (2, True)
    """

    metadata: dict = {"render_modes": []}

    def __init__(self, n_actions: int = 10, n_legal: int = 2, horizon: int = 10):
        if not 1 <= n_legal <= n_actions:
            raise ValueError(f"n_legal must be between 1 and n_actions ({n_actions}), got {n_legal}")
        self.n_actions, self.n_legal, self.horizon = n_actions, n_legal, horizon
        self.action_space = gym.spaces.Discrete(n_actions)
        self.observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(0.0, 1.0, (n_actions,), dtype=np.float32),
                "action_mask": gym.spaces.MultiBinary(n_actions),
            }
        )
        self._target, self._t = 0, 0
        self._mask = np.zeros(n_actions, dtype=np.int8)

    def _observe(self) -> dict[str, np.ndarray]:
        self._target = int(self.np_random.integers(self.n_actions))
        others = self.np_random.permutation([a for a in range(self.n_actions) if a != self._target])
        self._mask = np.zeros(self.n_actions, dtype=np.int8)
        self._mask[[self._target, *others[: self.n_legal - 1]]] = 1
        shown = np.zeros(self.n_actions, dtype=np.float32)
        shown[self._target] = 1.0
        return {"observation": shown, "action_mask": self._mask.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._observe(), {}

    def step(self, action):
        action = int(action)
        reward = 1.0 if action == self._target else 0.0
        info = {"invalid_action": not bool(self._mask[action])}
        self._t += 1
        return self._observe(), reward, self._t >= self.horizon, False, info

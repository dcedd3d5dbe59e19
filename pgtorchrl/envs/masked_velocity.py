"""Classic control with its velocities hidden: partially observed tasks that need memory.

As rl-baselines3-zoo's ``MaskVelocityWrapper`` (the envs its ``ppo_lstm`` results are for):
the velocity entries of the observation are multiplied by zero, so the observation keeps its
shape and the policy must infer the velocities from the positions it has seen.

==============================  ==================  ==========================================
id                              base                hidden entries
==============================  ==================  ==========================================
``pgtorchrl/CartPoleNoVel-v1``  ``CartPole-v1``     1, 3 (cart velocity, pole angular velocity)
``pgtorchrl/PendulumNoVel-v1``  ``Pendulum-v1``     2 (angular velocity)
==============================  ==================  ==========================================
"""

from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np

__all__ = ["MaskVelocity", "VELOCITY_ENTRIES", "masked_velocity_env"]

VELOCITY_ENTRIES = {"CartPole-v1": (1, 3), "Pendulum-v1": (2,)}
"""Per base id, the observation entries that are velocities (rl-zoo's masks)."""


class MaskVelocity(gym.ObservationWrapper):
    """Zeroes the observation entries ``hidden``.

    >>> env = MaskVelocity(gym.make("CartPole-v1"), (1, 3))
    >>> obs, _ = env.reset(seed=0)
    >>> bool((obs[[1, 3]] == 0).all()), bool((obs[[0, 2]] != 0).all())
    (True, True)
    """

    def __init__(self, env: gym.Env, hidden: Sequence[int]):
        super().__init__(env)
        self.mask = np.ones(env.observation_space.shape or (), dtype=env.observation_space.dtype)
        self.mask[list(hidden)] = 0

    def observation(self, observation):
        return observation * self.mask


def masked_velocity_env(base_id: str, **kwargs) -> gym.Env:
    """``gym.make(base_id, **kwargs)`` with its velocities hidden (:data:`VELOCITY_ENTRIES`)."""
    return MaskVelocity(gym.make(base_id, **kwargs), VELOCITY_ENTRIES[base_id])

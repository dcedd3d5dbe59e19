"""CartPole-v1 written in torch: gymnasium's exact dynamics, many envs in one tensor, CPU or CUDA.

Constants, the Euler step, the termination thresholds (``|x| > 2.4``, ``|theta| > 12`` degrees), the
+1 reward on every step (the terminating one included), the uniform(-0.05, 0.05) start and the
500-step truncation are gymnasium's ``CartPoleEnv`` / ``TimeLimit``; a test steps both side by
side from the same states with the same actions.
"""

from __future__ import annotations

import math

import torch

from pgtorchrl.envs.native import TorchNativeEnv

__all__ = ["TorchCartPoleEnv"]

GRAVITY, MASSCART, MASSPOLE = 9.8, 1.0, 0.1
TOTAL_MASS = MASSCART + MASSPOLE
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG, TAU = 10.0, 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4


class TorchCartPoleEnv(TorchNativeEnv):
    """``num_envs`` CartPole-v1 envs stepped as one batched TorchRL env.

    Args:
        num_envs: envs stepped side by side.
        device: ``"cpu"`` or ``"cuda"``.
        max_episode_steps: the time limit (gymnasium registers 500 for v1).
        dtype: the state's dtype (``torch.float64`` matches gymnasium's numpy state exactly).

    Examples:
        >>> env = TorchCartPoleEnv(num_envs=4)
        >>> env.rollout(3).batch_size
        torch.Size([4, 3])
    """

    _state_attrs = ("state", "_steps")

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        max_episode_steps: int = 500,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.max_episode_steps = max_episode_steps
        self.state_dtype = dtype
        self._standard_specs(observation=(4, dtype), n_actions=2)
        self.state = torch.zeros(num_envs, 4, dtype=dtype, device=self.device)
        self._steps = torch.zeros(num_envs, 1, dtype=torch.int64, device=self.device)
        self._reward = torch.ones(num_envs, 1, device=self.device)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(0)

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self._generator.manual_seed(seed)

    def _flags(self, terminated: torch.Tensor) -> dict[str, torch.Tensor]:
        truncated = (self._steps >= self.max_episode_steps) & ~terminated
        return {"done": terminated | truncated, "terminated": terminated, "truncated": truncated}

    def reset_tensors(self, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        fresh = torch.rand(self.state.shape, generator=self._generator, device=self.device, dtype=self.state_dtype)
        fresh = fresh * 0.1 - 0.05
        if mask is None:
            self.state, self._steps = fresh, torch.zeros_like(self._steps)
        else:
            self.state = torch.where(mask.unsqueeze(-1), fresh, self.state)
            self._steps = self._steps.masked_fill(mask.unsqueeze(-1), 0)
        none = torch.zeros_like(self._steps, dtype=torch.bool)
        return {
            "observation": self.state,
            "step_count": self._steps,
            "episode_reward": self._steps.float(),
            **self._flags(none),
        }

    def step_tensors(self, action: torch.Tensor) -> dict[str, torch.Tensor]:
        x, x_dot, theta, theta_dot = self.state.unbind(-1)
        force = torch.where(action[..., 1].bool(), FORCE_MAG, -FORCE_MAG).to(self.state_dtype)
        costheta, sintheta = torch.cos(theta), torch.sin(theta)
        temp = (force + POLEMASS_LENGTH * theta_dot.square() * sintheta) / TOTAL_MASS
        thetaacc = (GRAVITY * sintheta - costheta * temp) / (
            LENGTH * (4.0 / 3.0 - MASSPOLE * costheta.square() / TOTAL_MASS)
        )
        xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
        # gymnasium's "euler" integrator: positions move with the old velocities
        self.state = torch.stack(
            [x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc], -1
        )
        self._steps = self._steps + 1
        x, theta = self.state[..., 0], self.state[..., 2]
        terminated = ((x.abs() > X_THRESHOLD) | (theta.abs() > THETA_THRESHOLD)).unsqueeze(-1)
        return {
            "observation": self.state,
            "step_count": self._steps,
            "episode_reward": self._steps.float(),
            "reward": self._reward,
            **self._flags(terminated),
        }

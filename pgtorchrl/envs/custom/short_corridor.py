"""Sutton & Barto's short corridor with switched actions (Example 13.1), in torch.

States 0, 1, 2 and the terminal 3; every episode starts in 0; the reward is -1 per step.
``right``/``left`` move as usual in states 0 and 2 (left in 0 stays in 0) and are reversed in
state 1. Every state shows the same observation, so a policy cannot tell them apart: the best
it can do is pick ``right`` with a fixed probability ``p``, worth
:math:`J(p) = (2p - 4) / (p (1 - p))` from the start (:func:`corridor_value`), maximal at
:math:`p^* = 2 - \\sqrt 2`, :math:`J(p^*) \\approx -11.66`.

The env is a TorchRL :class:`~torchrl.envs.EnvBase` stepping ``num_envs`` corridors at once,
on CPU or CUDA. Besides ``observation`` (always ``[1.0]``) it writes ``state``, the true
position, for state-dependent baselines and checks; the textbook policy never reads it.
"""

from __future__ import annotations

import math

import torch

from pgtorchrl.envs.native import TorchNativeEnv

__all__ = [
    "ShortCorridorEnv",
    "make_short_corridor",
    "corridor_value",
    "corridor_state_values",
    "OPTIMAL_P",
    "OPTIMAL_VALUE",
    "LEFT",
    "TERMINAL",
]

LEFT = 1  # the one-hot action's column for left (right is column 0)
TERMINAL = 3
# the next state, indexed by 2 * state + (action == left): right/left as usual in 0 and 2 (left
# in 0 stays in 0), reversed in 1; the terminal stays put (the fast path may step past the end)
_NEXT_STATE = (1, 0, 0, 2, 3, 1, 3, 3)
OPTIMAL_P = 2 - math.sqrt(2)


def corridor_value(p: float | torch.Tensor) -> float | torch.Tensor:
    r"""The start state's value :math:`J(p) = (2p - 4) / (p (1 - p))` when ``right`` has
    probability ``p`` in every state (undiscounted). Source: Sutton & Barto (2018), Example 13.1.

    >>> round(corridor_value(2 - 2 ** 0.5), 3)
    -11.657
    """
    return (2 * p - 4) / (p * (1 - p))


OPTIMAL_VALUE = corridor_value(OPTIMAL_P)


def corridor_state_values(p: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    r"""Exact :math:`v_p(s)` for ``s = 0, 1, 2`` (discounted by ``gamma``), by solving the
    Bellman equations :math:`v = r + \gamma P_p v`; differentiable in ``p``.

    >>> v = corridor_state_values(torch.tensor(0.5))
    >>> round(v[0].item(), 6) == round(corridor_value(0.5), 6)
    True
    """
    q = 1 - p
    zero = torch.zeros_like(p)
    # rows: transitions from 0, 1, 2 (the terminal column is dropped: its value is 0)
    transitions = torch.stack(
        [
            torch.stack([q, p, zero]),  # 0: right -> 1, left -> stays in 0
            torch.stack([p, zero, q]),  # 1: reversed: right -> 0, left -> 2
            torch.stack([zero, q, zero]),  # 2: right -> terminal, left -> 1
        ]
    )
    eye = torch.eye(3, dtype=p.dtype, device=p.device)
    return torch.linalg.solve(eye - gamma * transitions, -torch.ones(3, dtype=p.dtype, device=p.device))


class ShortCorridorEnv(TorchNativeEnv):
    """``num_envs`` independent short corridors stepped as one batched TorchRL env.

    Args:
        num_envs: corridors stepped side by side.
        device: ``"cpu"`` or ``"cuda"``.

    Examples:
        >>> env = ShortCorridorEnv(num_envs=3)
        >>> td = env.rand_step(env.reset())
        >>> td["next", "reward"].flatten().tolist()
        [-1.0, -1.0, -1.0]
    """

    _state_attrs = ("_position", "_steps")

    def __init__(self, num_envs: int = 1, device: str | torch.device = "cpu"):
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self._standard_specs(observation=(1, torch.float32), state=(1, torch.int64), n_actions=2)
        # [num_envs, 1], the layout of the observations: no reshaping per step
        self._position = torch.zeros(num_envs, 1, dtype=torch.int64, device=self.device)
        self._steps = torch.zeros(num_envs, 1, dtype=torch.int64, device=self.device)
        self._observation = torch.ones(num_envs, 1, device=self.device)
        self._not_truncated = torch.zeros(num_envs, 1, dtype=torch.bool, device=self.device)
        self._reward = torch.full((num_envs, 1), -1.0, device=self.device)
        self._next_state = torch.tensor(_NEXT_STATE, device=self.device)

    def _observe(self) -> dict[str, torch.Tensor]:
        done = self._position == TERMINAL
        return {
            "observation": self._observation,  # identical in every state, by design
            "state": self._position,
            "step_count": self._steps,
            "episode_reward": -self._steps.float(),  # -1 per step: the return so far (RewardSum's key)
            "done": done,
            "terminated": done.clone(),  # its own tensor: consumers may edit flags in place
            "truncated": self._not_truncated,
        }

    def reset_tensors(self, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if mask is None:
            self._position = torch.zeros_like(self._position)
            self._steps = torch.zeros_like(self._steps)
        else:
            self._position = self._position.masked_fill(mask.unsqueeze(-1), 0)
            self._steps = self._steps.masked_fill(mask.unsqueeze(-1), 0)
        return self._observe()

    def step_tensors(self, action: torch.Tensor) -> dict[str, torch.Tensor]:
        left = action[..., LEFT : LEFT + 1].long()  # one-hot: 1 where the action is left
        self._position = self._next_state.take(torch.add(left, self._position, alpha=2))
        self._steps = self._steps + 1
        return {**self._observe(), "reward": self._reward}

    def _set_seed(self, seed: int | None) -> None:
        """The dynamics are deterministic: nothing to seed (the policy's sampling uses torch's RNG)."""


def make_short_corridor(num_envs: int = 1, device: str = "cpu") -> ShortCorridorEnv:
    """The batched corridor; it writes ``episode_reward`` and ``step_count`` itself (the keys
    TorchRL's ``RewardSum`` and ``StepCounter`` write for the gym envs)."""
    return ShortCorridorEnv(num_envs, device)

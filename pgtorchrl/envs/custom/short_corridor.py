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
from tensordict import TensorDictBase
from torch import nn

from pgtorchrl.modules.fast_policies import log_softmax, softmax
from pgtorchrl.envs.native import TorchNativeEnv

__all__ = [
    "ShortCorridorEnv",
    "make_short_corridor",
    "LinearSoftmaxPreferences",
    "ScalarValue",
    "corridor_value",
    "corridor_state_values",
    "OPTIMAL_P",
    "OPTIMAL_VALUE",
    "make_corridor_actor",
    "exact_gradient",
    "exact_value_critic",
    "per_episode_gradients",
    "estimator_catalogue",
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
        left = action[..., LEFT:LEFT + 1].long()  # one-hot: 1 where the action is left
        self._position = self._next_state.take(torch.add(left, self._position, alpha=2))
        self._steps = self._steps + 1
        return {**self._observe(), "reward": self._reward}

    def _set_seed(self, seed: int | None) -> None:
        """The dynamics are deterministic: nothing to seed (the policy's sampling uses torch's RNG)."""


def make_short_corridor(num_envs: int = 1, device: str = "cpu") -> ShortCorridorEnv:
    """The batched corridor; it writes ``episode_reward`` and ``step_count`` itself (the keys
    TorchRL's ``RewardSum`` and ``StepCounter`` write for the gym envs)."""
    return ShortCorridorEnv(num_envs, device)


def _per_run(param: torch.Tensor, observation: torch.Tensor) -> torch.Tensor:
    """Aligns a per-run parameter ``[runs, k]`` with observations ``[runs, *time, 1]``. A shared
    parameter ``[k]`` broadcasts as it is, and so does one with a row per observation (the
    fixed-point per-step solver's weights: ``[N, k]`` for ``N`` steps packed into one batch)."""
    if param.dim() < 2 or param.dim() == observation.dim():  # shared, or one row per run (and step)
        return param
    return param.reshape(param.shape[0], *([1] * (observation.dim() - 2)), param.shape[-1])


class LinearSoftmaxPreferences(nn.Module):
    r"""The textbook's linear softmax policy :math:`\pi(a|s) \propto e^{\theta^\top x(s, a)}`
    with :math:`x(s, \text{right}) = [1, 0]`, :math:`x(s, \text{left}) = [0, 1]`: the logits
    are :math:`\theta` itself, whatever the observation.

    Args:
        init_preferences: the initial :math:`\theta = (\theta_{right}, \theta_{left})`;
            ``(-1.47, 1.47)`` gives ``P(right) = 0.05``.
        prob_floor: keep each action's probability at least this (0 disables it). The floor
            clips the value; its gradient is the softmax's (straight-through), as in the
            public reproduction of Figure 13.1 that keeps every episode finite.
        num_runs: ``None`` for one shared :math:`\theta`; an integer for that many independent
            :math:`\theta` rows, row ``i`` acting in env ``i`` (many runs as one computation).

    ``independent_runs`` is true when ``theta``'s first dim indexes runs; the forward then also
    takes a ``theta`` with one row per observation (``[N, 2]``), as
    :mod:`pgtorchrl.trainers.per_step`'s fixed-point solver passes it.
    """

    def __init__(self, init_preferences=(-1.47, 1.47), prob_floor: float = 0.0, num_runs: int | None = None):
        super().__init__()
        self.independent_runs = num_runs is not None
        theta = torch.as_tensor(init_preferences, dtype=torch.float32)
        if num_runs is not None:
            theta = theta.expand(num_runs, 2).clone()
        self.theta = nn.Parameter(theta)
        if not 0.0 <= prob_floor < 0.5:
            raise ValueError(f"prob_floor={prob_floor} must be in [0, 0.5)")
        self.prob_floor = prob_floor

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        theta = _per_run(self.theta, observation)
        if theta.shape[:-1] != observation.shape[:-1]:
            theta = theta.expand(*observation.shape[:-1], 2)
        if not self.prob_floor:
            return theta
        if not torch.is_grad_enabled():  # acting: the value is all that is needed
            return log_softmax(theta).clamp(math.log(self.prob_floor), math.log1p(-self.prob_floor))
        p = softmax(theta)
        with torch.no_grad():  # the clip as a constant shift: value clipped, softmax gradient kept
            shift = p.clamp(self.prob_floor, 1 - self.prob_floor) - p
        return (p + shift).log()


class ScalarValue(nn.Module):
    r"""The textbook's scalar baseline :math:`\hat v(s, w) = w` (one ``w``, or one per run;
    ``independent_runs`` as for :class:`LinearSoftmaxPreferences`, one ``w`` per observation: ``[N]``)."""

    def __init__(self, init: float = 0.0, num_runs: int | None = None):
        super().__init__()
        self.independent_runs = num_runs is not None
        self.w = nn.Parameter(torch.full(() if num_runs is None else (num_runs,), float(init)))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        # a copy, not a view of w: the batch keeps these values while SGD updates w in place
        return _per_run(self.w.unsqueeze(-1), observation).expand(*observation.shape[:-1], 1).clone()


def make_corridor_actor(init_preferences=(-1.47, 1.47), prob_floor: float = 0.0, num_runs: int | None = None):
    """A ``ProbabilisticActor`` over :class:`LinearSoftmaxPreferences` (one-hot actions)."""
    from tensordict.nn import TensorDictModule

    from pgtorchrl.modules.models import categorical_actor

    net = TensorDictModule(
        LinearSoftmaxPreferences(init_preferences, prob_floor, num_runs), in_keys=["observation"], out_keys=["logits"]
    )
    return categorical_actor(net)


def exact_gradient(theta: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    r""":math:`\nabla_\theta v_{\pi_\theta}(s_0)` for the linear softmax policy (no floor), by
    differentiating the exact Bellman solution; :math:`p = \sigma(\theta_{right} - \theta_{left})`.

    >>> g = exact_gradient(torch.tensor([0.0, 0.0]))   # p = 0.5: J'(p) = 8, dp/dtheta_R = 0.25
    >>> [round(x, 6) for x in g.tolist()]
    [2.0, -2.0]
    """
    theta = theta.detach().to(torch.float64).requires_grad_(True)
    p = torch.sigmoid(theta[0] - theta[1])
    (grad,) = torch.autograd.grad(corridor_state_values(p, gamma)[0], theta)
    return grad


def per_episode_gradients(batch: TensorDictBase, weight_key="advantage") -> torch.Tensor:
    r"""Each episode's estimate :math:`\sum_t \nabla_\theta \log \pi(a_t|s_t)\, w_t` for the linear
    softmax policy, where :math:`\nabla_\theta \log \pi(a) = \text{onehot}(a) - \pi` (closed form,
    no floor); shape ``[episodes, 2]``. Their mean is the slides' Monte Carlo estimate."""
    mask = batch.get(("collector", "mask")).unsqueeze(-1)
    score = batch.get("action").to(torch.float64) - torch.softmax(batch.get("logits").to(torch.float64), -1)
    weight = batch.get(weight_key).to(torch.float64)
    return (score * weight * mask).sum(-2)


def exact_value_critic(theta, gamma: float = 1.0):
    """The true :math:`v_\\pi(s)` of the linear softmax policy ``theta`` as a baseline module: it
    reads the corridor's ``state`` (never the action) and writes ``state_value``."""
    from tensordict.nn import TensorDictModule

    p = torch.sigmoid(torch.tensor(theta[0] - theta[1], dtype=torch.float64))
    table = torch.cat([corridor_state_values(p, gamma), torch.zeros(1, dtype=torch.float64)]).float()
    return TensorDictModule(lambda state: table[state], in_keys=["state"], out_keys=["state_value"])


def estimator_catalogue(theta, gamma: float = 1.0) -> dict:
    """The slides' estimators as pgtorchrl advantage modules, in the order the slides reduce
    variance; the baselines are the exact :math:`v_\\pi` of ``theta`` (or the batch mean)."""
    from pgtorchrl.objectives.value.advantages import GAE, FullReturn, RewardToGo, TDError

    def exact():
        return exact_value_critic(theta, gamma)

    return {
        "full return G(tau)": FullReturn(gamma=gamma, truncation="terminal"),
        "reward-to-go G_t": RewardToGo(gamma=gamma, truncation="terminal"),
        "G_t - batch mean": RewardToGo(gamma=gamma, baseline="mean", truncation="terminal"),
        "G(tau) - V(s_t)": FullReturn(exact(), gamma=gamma),
        "G_t - V(s_t)": RewardToGo(exact(), gamma=gamma, baseline="critic"),
        "GAE(0.9)": GAE(exact(), gamma=gamma, lmbda=0.9),
        "TD error": TDError(exact(), gamma=gamma),
    }

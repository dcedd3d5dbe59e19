"""The textbook's short-corridor policy and baseline (Sutton & Barto 2018, Example 13.1 and
Figure 13.2): the linear softmax over :math:`x(s, right) = [1, 0]`, :math:`x(s, left) = [0, 1]`
and the scalar baseline :math:`\\hat v(s, w) = w`, each with one parameter set shared or one per
run (many independent runs as one computation). The env is
:mod:`pgtorchrl.envs.custom.short_corridor`; its closed forms for these modules are
:mod:`pgtorchrl.objectives.corridor_exact`.
"""

from __future__ import annotations

import math

import torch
from tensordict.nn import TensorDictModule
from torch import nn

from pgtorchrl.modules.fast_policies import log_softmax, softmax
from pgtorchrl.modules.models import categorical_actor

__all__ = ["LinearSoftmaxPreferences", "ScalarValue", "make_corridor_actor"]


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
    net = TensorDictModule(
        LinearSoftmaxPreferences(init_preferences, prob_floor, num_runs), in_keys=["observation"], out_keys=["logits"]
    )
    return categorical_actor(net)

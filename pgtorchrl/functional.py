"""Pure tensor maths of the policy-gradient weights: returns and advantages.

Every function takes tensors shaped ``[*batch, T, F]`` (time on dim ``-2``, the layout of a
TorchRL collector batch with a trailing feature dimension) and returns a tensor of the same
shape. ``done``/``terminated`` are booleans flagging the *transition* ``t`` (TorchRL's
``("next", "done")``): ``terminated`` is a true end of the MDP, ``done`` also covers a time-limit
truncation. The last step of every row is a batch-end fragment unless it is terminated.

Bootstrapping follows Spinning Up's ``finish_path(last_val)``: where a row is cut without a true
termination (truncation or batch end) the return continues with ``next_value = V(s_{t+1})``;
a true termination contributes nothing after it.
"""
from __future__ import annotations

import torch

__all__ = ["reward_to_go", "generalized_advantage_estimate", "check_time_shapes"]


def check_time_shapes(**tensors: torch.Tensor) -> tuple[int, ...]:
    """Checks that all tensors share one ``[*batch, T, F]`` shape and returns it.

    >>> check_time_shapes(reward=torch.zeros(2, 5, 1), done=torch.zeros(2, 5, 1, dtype=torch.bool))
    (2, 5, 1)
    """
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    first_name, first = next(iter(shapes.items()))
    if len(first) < 2:
        raise ValueError(
            f"{first_name} has shape {first}: expected [*batch, T, F] with time on dim -2; "
            f"add a trailing feature dim with .unsqueeze(-1)."
        )
    mismatched = {n: s for n, s in shapes.items() if s != first}
    if mismatched:
        raise ValueError(
            f"shape mismatch: {first_name} is {first} but {mismatched}; all inputs must share "
            f"one [*batch, T, F] shape."
        )
    return first


def _cuts(done: torch.Tensor) -> torch.Tensor:
    """Where a row's return stops accumulating: an episode end or the batch's last step."""
    cut = done.clone()
    cut[..., -1, :] = True
    return cut


def reward_to_go(
    reward: torch.Tensor,
    done: torch.Tensor,
    terminated: torch.Tensor,
    next_value: torch.Tensor | None,
    gamma: float,
) -> torch.Tensor:
    r"""Discounted reward-to-go, bootstrapped at truncations and batch ends.

    .. math::

        G_t = r_t + \gamma \cdot \begin{cases}
            0 & \text{if } s_{t+1} \text{ is terminal} \\
            V(s_{t+1}) & \text{if the episode was cut at } t \text{ (truncation, batch end)} \\
            G_{t+1} & \text{otherwise}
        \end{cases}

    i.e. :math:`G_t = \sum_{t'=t}^{T-1} \gamma^{t'-t} r_{t'}` on a complete episode. Source: the
    slides' "reward-to-go policy gradient"; Sutton & Barto (2018) Sec. 13.3 (the :math:`G_t` of the
    boxed REINFORCE); Spinning Up, "Intro to Policy Optimization: Reward-to-Go Policy Gradient" and
    ``finish_path(last_val)`` for the bootstrap.

    Args:
        reward: ``r_t``, shape ``[*B, T, F]``.
        done: whether transition ``t`` ended its episode (terminated or truncated).
        terminated: whether ``s_{t+1}`` is a true terminal state.
        next_value: ``V(s_{t+1})``; ``None`` means no critic (bootstrap with 0).
        gamma: discount in ``[0, 1]``.

    >>> r = torch.ones(1, 3, 1)
    >>> term = torch.tensor([False, False, True]).view(1, 3, 1)
    >>> reward_to_go(r, term, term, None, gamma=0.5).flatten().tolist()
    [1.75, 1.5, 1.0]
    """
    tensors = dict(reward=reward, done=done, terminated=terminated)
    if next_value is not None:
        tensors["next_value"] = next_value
    check_time_shapes(**tensors)
    if next_value is None:
        next_value = torch.zeros_like(reward)
    cut = _cuts(done)
    keep = (~terminated).to(reward.dtype) * gamma
    out = torch.empty_like(reward)
    running = next_value[..., -1, :]
    for t in range(reward.shape[-2] - 1, -1, -1):
        future = torch.where(cut[..., t, :], next_value[..., t, :], running)
        running = reward[..., t, :] + keep[..., t, :] * future
        out[..., t, :] = running
    return out


def generalized_advantage_estimate(
    reward: torch.Tensor,
    value: torch.Tensor,
    next_value: torch.Tensor,
    done: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    lmbda: float,
) -> torch.Tensor:
    r"""GAE(:math:`\lambda`) advantages with the critic as baseline.

    .. math::

        \delta_t = r_t + \gamma (1 - \text{terminated}_t) V(s_{t+1}) - V(s_t), \qquad
        \hat A_t = \delta_t + \gamma \lambda (1 - \text{cut}_t) \hat A_{t+1}

    where ``cut`` is an episode end or the batch's last step: a truncation or batch-end fragment
    keeps its bootstrap :math:`V(s_{t+1})` inside :math:`\delta_t`, a termination does not.
    :math:`\lambda = 1` gives :math:`G_t - V(s_t)` (Monte Carlo advantage), :math:`\lambda = 0` the
    one-step TD error. Source: Schulman et al. (2016) "High-Dimensional Continuous Control Using
    Generalized Advantage Estimation", Eq. 16; Spinning Up VPG (the slides' "vanilla policy
    gradient" advantage step).

    >>> r = torch.ones(1, 2, 1); v = torch.zeros(1, 2, 1)
    >>> d = torch.tensor([False, True]).view(1, 2, 1)
    >>> generalized_advantage_estimate(r, v, v, d, d, gamma=1.0, lmbda=1.0).flatten().tolist()
    [2.0, 1.0]
    """
    check_time_shapes(reward=reward, value=value, next_value=next_value, done=done, terminated=terminated)
    delta = reward + gamma * (~terminated).to(reward.dtype) * next_value - value
    carry = (~_cuts(done)).to(reward.dtype) * (gamma * lmbda)
    out = torch.empty_like(reward)
    running = torch.zeros_like(reward[..., -1, :])
    for t in range(reward.shape[-2] - 1, -1, -1):
        running = delta[..., t, :] + carry[..., t, :] * running
        out[..., t, :] = running
    return out

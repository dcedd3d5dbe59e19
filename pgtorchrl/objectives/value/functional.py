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

__all__ = [
    "reward_to_go",
    "episode_return",
    "generalized_advantage",
    "discount_weights",
    "explained_variance",
    "check_time_shapes",
]


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
            f"shape mismatch: {first_name} is {first} but {mismatched}; all inputs must share one [*batch, T, F] shape."
        )
    return first


def _cuts(done: torch.Tensor) -> torch.Tensor:
    """Where a row's return stops accumulating: an episode end or the batch's last step."""
    cut = done.clone()
    cut[..., -1, :] = True
    return cut


def _affine_scan(offset: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    r"""Solves :math:`y_t = b_t + a_t\, y_{t+1}` backwards in time (:math:`y_T = 0`) along
    dim ``-2``, the recurrence behind every return below, in :math:`\lceil\log_2 T\rceil`
    vectorized rounds instead of ``T`` Python steps (Hillis & Steele's doubling scan: after the
    round of stride ``d`` each ``(b_t, a_t)`` spans steps ``t .. t + 2d - 1``). A zero ``a_t``
    (an episode boundary) stops the sum there: nothing after it, not even a NaN, reaches ``y_t``."""
    b, a = offset, factor
    length, stride = b.shape[-2], 1
    while stride < length:
        head = slice(0, length - stride)
        tail_b, tail_a = b[..., stride:, :], a[..., stride:, :]
        reach = a[..., head, :]
        b = torch.cat([b[..., head, :] + torch.where(reach != 0, reach * tail_b, 0.0), b[..., head.stop :, :]], -2)
        a = torch.cat([reach * tail_a, a[..., head.stop :, :]], -2)
        stride *= 2
    return b


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
    cut = _cuts(done)
    keep = (~terminated).to(reward.dtype) * gamma
    # G_t = r_t + keep_t * V(s_{t+1}) where the row is cut at t, else r_t + keep_t * G_{t+1}
    bootstrap = reward if next_value is None else reward + torch.where(cut, keep * next_value, 0.0)
    return _affine_scan(bootstrap, torch.where(cut, 0.0, keep))


def generalized_advantage(
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
    >>> generalized_advantage(r, v, v, d, d, gamma=1.0, lmbda=1.0).flatten().tolist()
    [2.0, 1.0]
    """
    check_time_shapes(reward=reward, value=value, next_value=next_value, done=done, terminated=terminated)
    delta = reward + gamma * (~terminated).to(reward.dtype) * next_value - value
    carry = (~_cuts(done)).to(reward.dtype) * (gamma * lmbda)
    return _affine_scan(delta, carry)


def episode_return(
    reward: torch.Tensor,
    done: torch.Tensor,
    terminated: torch.Tensor,
    next_value: torch.Tensor | None,
    gamma: float,
) -> torch.Tensor:
    r"""The whole episode's return :math:`G(\tau)`, given to every step of the episode.

    .. math::

        w_t = G(\tau) = \sum_{t'=0}^{T-1} \gamma^{t'} r_{t'} \quad \text{for every } t \text{ of } \tau

    (plus :math:`\gamma^T V(s_T)` where the episode was cut without terminating). This is the
    estimator of the slides' "Plugging grad-log-prob into the gradient update":
    :math:`\nabla_\theta J \approx \frac1L \sum_\tau \sum_t \nabla_\theta \log \pi_\theta(a_t|s_t) G(\tau)`.
    Each row must start at an episode's first step (whole-episode batches).

    >>> r = torch.ones(1, 4, 1)
    >>> d = torch.tensor([False, True, False, True]).view(1, 4, 1)
    >>> episode_return(r, d, d, None, gamma=1.0).flatten().tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    returns = reward_to_go(reward, done, terminated, next_value, gamma)
    # an episode starts at t = 0 and after each done: there w_t = G_t, elsewhere w_t = w_{t-1}
    # (the same scan run backwards in time on the time-reversed rows)
    start = torch.ones_like(done)
    start[..., 1:, :] = done[..., :-1, :]
    flip = returns.dim() - 2
    carried = _affine_scan(torch.where(start, returns, 0.0).flip(flip), (~start).to(returns.dtype).flip(flip))
    return carried.flip(flip)


def discount_weights(step_count: torch.Tensor, gamma: float) -> torch.Tensor:
    r""":math:`\gamma^t`, the factor of Sutton & Barto's boxed REINFORCE.

    .. math:: \theta \leftarrow \theta + \alpha \gamma^t G_t \nabla \ln \pi(A_t|S_t, \theta)

    Source: Sutton & Barto (2018) Sec. 13.3, the REINFORCE box (and Exercise 13.2 on why the
    factor belongs to the discounted case). ``step_count`` is the step index ``t`` of ``s_t``
    within its episode (TorchRL's ``StepCounter`` writes it).

    >>> discount_weights(torch.tensor([[0], [1], [2]]), 0.5).flatten().tolist()
    [1.0, 0.5, 0.25]
    """
    return torch.pow(torch.as_tensor(gamma, dtype=torch.float64), step_count.to(torch.float64)).float()


def explained_variance(prediction: torch.Tensor, target: torch.Tensor) -> float:
    r""":math:`1 - \mathrm{Var}[y - \hat y] / \mathrm{Var}[y]`: 1 for a perfect critic, 0 for a
    constant one, negative for one worse than a constant (nan when the target is constant).

    >>> explained_variance(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0]))
    1.0
    """
    var = target.var(unbiased=False)
    return float("nan") if var == 0 else float(1 - (target - prediction).var(unbiased=False) / var)

"""The short corridor's closed forms under the linear softmax policy, the ground truth that
``tests/test_estimators.py`` and ``benchmarks/estimator_report.py`` hold the estimators to: the
exact policy gradient, each episode's score-function estimate, the exact-value baseline, and the
slides' estimators built on it (Sutton & Barto 2018, Example 13.1; the env and its values are
:mod:`pgtorchrl.envs.custom.short_corridor`, the policy :mod:`pgtorchrl.modules.linear_softmax`).
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule

from pgtorchrl.envs.custom.short_corridor import corridor_state_values
from pgtorchrl.objectives.value.advantages import GAE, FullReturn, RewardToGo, TDError

__all__ = ["exact_gradient", "per_episode_gradients", "exact_value_critic", "estimator_catalogue"]


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
    p = torch.sigmoid(torch.tensor(theta[0] - theta[1], dtype=torch.float64))
    table = torch.cat([corridor_state_values(p, gamma), torch.zeros(1, dtype=torch.float64)]).float()
    return TensorDictModule(lambda state: table[state], in_keys=["state"], out_keys=["state_value"])


def estimator_catalogue(theta, gamma: float = 1.0) -> dict:
    """The slides' estimators as pgtorchrl advantage modules, in the order the slides reduce
    variance; the baselines are the exact :math:`v_\\pi` of ``theta`` (or the batch mean)."""

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

r"""Natural policy gradient and TRPO: the slides' answer to vanilla policy gradient's step size.

The slides end VPG with its problem: "Learning rate is a heuristic that cannot be easily tuned.
If we take large steps (especially in the beginning of training) we might never recover." The
natural gradient (Kakade 2001) measures the step in the policy's own geometry: it solves

.. math::

    \max_{\Delta} \; g^\top \Delta \quad \text{s.t.} \quad
    \tfrac12 \Delta^\top F \Delta \le \delta, \qquad
    F = \mathbb{E}_{s}\, \mathbb{E}_{a \sim \pi_\theta}\big[\nabla \log \pi_\theta(a|s)\, \nabla \log \pi_\theta(a|s)^\top\big]
      = \nabla^2_{\theta'} \, \overline{\mathrm{KL}}(\pi_\theta \,\|\, \pi_{\theta'})\big|_{\theta'=\theta},

whose solution is :math:`\Delta = \sqrt{2\delta / (x^\top F x)}\, x` with :math:`x = F^{-1} g`
(Schulman et al. 2015, "Trust Region Policy Optimization", Sec. 6 and Appendix C). ``x`` is found
by conjugate gradient on Fisher-vector products, never forming ``F``. TRPO adds a backtracking
line search that accepts a step only if the measured mean KL stays within ``delta`` and the
surrogate objective improves.

The pure maths are the three functions :func:`fisher_vector_product`, :func:`conjugate_gradient`
and :func:`backtracking_line_search`; :class:`NaturalPolicyGradient` and :class:`TRPO` are
``torch.optim.Optimizer`` s built on them, used as the pipeline's ``optim:`` (``npg``, ``trpo``).
Their ``step(closure)`` takes a closure returning ``(loss, kl)``: the actor's loss (the negated
surrogate) and the mean KL from the collecting policy, both differentiable at the current weights.
"""  # noqa: E501 (the equation as written)

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

__all__ = [
    "flat",
    "fisher_vector_product",
    "conjugate_gradient",
    "backtracking_line_search",
    "NaturalPolicyGradient",
    "TRPO",
]


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The tensors concatenated into one vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def fisher_vector_product(
    kl: torch.Tensor,
    params: Sequence[torch.Tensor],
    vector: torch.Tensor,
    damping: float = 0.0,
    kl_grad: torch.Tensor | None = None,
) -> torch.Tensor:
    r""":math:`(F + \lambda I) v` without forming :math:`F`: the Hessian of the mean KL
    between the collecting policy and the current one, at the current weights, times ``vector``,
    by double backward (Pearlmutter 1994; Schulman et al. 2015, Appendix C.1):

    .. math::

        F v = \nabla_\theta \big( (\nabla_\theta \overline{\mathrm{KL}})^\top v \big)

    At :math:`\theta = \theta_{old}` this Hessian is exactly the Fisher information matrix
    (the KL's gradient vanishes there). ``kl`` must have been computed with a graph through
    ``params``; ``kl_grad`` (``flat(autograd.grad(kl, params, create_graph=True))``) can be
    passed to reuse it across products. ``damping`` :math:`\lambda` keeps the system
    well-conditioned (softmax policies have a singular Fisher)."""
    if kl_grad is None:
        kl_grad = flat(torch.autograd.grad(kl, params, create_graph=True))
    product = flat(torch.autograd.grad(kl_grad @ vector, params, retain_graph=True))
    return product + damping * vector


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iterations: int = 10, residual_tol: float = 1e-10
) -> tuple[torch.Tensor, float]:
    r"""Solves :math:`A x = b` for a symmetric positive-definite :math:`A` given only
    :math:`v \mapsto A v` (Hestenes & Stiefel 1952; Nocedal & Wright 2006, Algorithm 5.2):
    ``iterations`` steps from :math:`x_0 = 0`, stopping early once :math:`\|r\|^2 <`
    ``residual_tol``. Returns ``x`` and the final residual norm :math:`\|b - A x\|`.

    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> x, residual = conjugate_gradient(lambda v: A @ v, torch.tensor([1.0, 2.0], dtype=torch.float64))
    >>> [round(v, 6) for v in x.tolist()], residual < 1e-8
    ([0.090909, 0.636364], True)
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iterations):
        if rr < residual_tol:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, float(rr.sqrt())


def backtracking_line_search(
    evaluate: Callable[[float], tuple[float, float]],
    loss_before: float,
    max_kl: float,
    backtrack_coeff: float = 0.8,
    max_backtracks: int = 10,
) -> tuple[float | None, int, float, float]:
    r"""TRPO's line search (Schulman et al. 2015, Sec. 6 and Appendix C): tries the step
    fractions :math:`1, c, c^2, \dots, c^{n-1}` (``c = backtrack_coeff``, ``n =
    max_backtracks``) and accepts the first whose measured mean KL is at most ``max_kl`` and
    whose loss (the negated surrogate) is below ``loss_before``. ``evaluate(fraction)`` applies
    that fraction of the full step and returns ``(loss, kl)``.

    Returns ``(fraction or None, tries, loss, kl)``: ``None`` when no fraction is accepted (the
    caller then restores the old weights), with the last try's loss and KL."""
    loss, kl = loss_before, 0.0
    for i in range(max_backtracks):
        fraction = backtrack_coeff**i
        loss, kl = evaluate(fraction)
        if kl <= max_kl and loss < loss_before:
            return fraction, i + 1, loss, kl
    return None, max_backtracks, loss, kl


class NaturalPolicyGradient(torch.optim.Optimizer):
    r"""The natural policy gradient step to the KL radius ``max_kl`` (Kakade 2001; the step of
    Schulman et al. 2015, Appendix C, without the line search):
    :math:`\theta \leftarrow \theta + \sqrt{2\delta/(x^\top F x)}\, x`, :math:`x = -(F + \lambda I)^{-1} \nabla L`.

    Args:
        params: the actor's parameters.
        max_kl: :math:`\delta`, the mean KL the quadratic model allows per step.
        damping: :math:`\lambda` added to the Fisher's diagonal.
        cg_iters: conjugate-gradient iterations.

    With a fixed radius every step moves the policy by about ``max_kl``, so near an optimum NPG
    circles it at a distance set by ``max_kl`` (TRPO's line search, which demands improvement,
    settles instead). ``step(closure)``: ``closure()`` returns ``(loss, kl)`` with a graph through the parameters
    (the loss to minimize, and the mean KL from the collecting policy). After each step,
    :attr:`stats` holds ``kl`` (measured after the step), ``cg_residual``, ``step_size``
    (the step's norm), ``surrogate_improvement`` (the loss's decrease) and
    ``line_search_steps`` (0: no line search).
    """

    line_search = False

    def __init__(self, params, *, max_kl: float = 0.01, damping: float = 0.1, cg_iters: int = 10):
        if max_kl <= 0:
            raise ValueError(f"max_kl={max_kl}: the KL radius must be positive")
        super().__init__(params, {"max_kl": max_kl, "damping": damping, "cg_iters": cg_iters})
        self.stats: dict[str, float] = {}

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.requires_grad]

    def _set(self, params: list[torch.Tensor], vector: torch.Tensor) -> None:
        with torch.no_grad():
            offset = 0
            for p in params:
                n = p.numel()
                p.copy_(vector[offset : offset + n].view_as(p))
                offset += n

    def step(self, closure):
        if closure is None:
            raise ValueError(f"{type(self).__name__}.step needs a closure returning (loss, kl)")
        group = self.param_groups[0]
        params = self._params()
        with torch.enable_grad():
            loss, kl = closure()
            grad = flat(torch.autograd.grad(loss, params, retain_graph=True))
            kl_grad = flat(torch.autograd.grad(kl, params, create_graph=True))

            def fvp(v):
                return fisher_vector_product(kl, params, v, group["damping"], kl_grad=kl_grad)

            direction, residual = conjugate_gradient(fvp, -grad, group["cg_iters"])
            curvature = direction @ fvp(direction)
        scale = math.sqrt(2 * group["max_kl"] / max(float(curvature), 1e-12))
        full_step = scale * direction.detach()
        old = flat([p.detach() for p in params]).clone()
        loss_before = float(loss.detach())

        def evaluate(fraction: float) -> tuple[float, float]:
            self._set(params, old + fraction * full_step)
            with torch.no_grad():
                new_loss, new_kl = closure()
            return float(new_loss), float(new_kl)

        if self.line_search:
            fraction, tries, new_loss, new_kl = backtracking_line_search(
                evaluate, loss_before, group["max_kl"], group["backtrack_coeff"], group["max_backtracks"]
            )
            if fraction is None:  # rejected: the policy stays exactly as it was
                self._set(params, old)
                fraction, new_loss, new_kl = 0.0, loss_before, 0.0
        else:
            fraction, tries = 1.0, 0
            new_loss, new_kl = evaluate(1.0)
        self.stats = {
            "kl": new_kl,
            "cg_residual": residual,
            "step_size": float(fraction * full_step.norm()),
            "surrogate_improvement": loss_before - new_loss,
            "line_search_steps": float(tries),
        }
        return loss


class TRPO(NaturalPolicyGradient):
    r"""Trust Region Policy Optimization (Schulman et al. 2015): the natural gradient step of
    :class:`NaturalPolicyGradient`, then :func:`backtracking_line_search`: the step is shrunk by
    ``backtrack_coeff`` until the measured mean KL is within ``max_kl`` and the surrogate
    improves, at most ``max_backtracks`` tries; if none is accepted the weights are left as
    they were.

    Args:
        params, max_kl, damping, cg_iters: see :class:`NaturalPolicyGradient`.
        backtrack_coeff: the shrink factor per try.
        max_backtracks: the most step sizes tried.
    """

    line_search = True

    def __init__(
        self,
        params,
        *,
        max_kl: float = 0.01,
        damping: float = 0.1,
        cg_iters: int = 10,
        backtrack_coeff: float = 0.8,
        max_backtracks: int = 10,
    ):
        super().__init__(params, max_kl=max_kl, damping=damping, cg_iters=cg_iters)
        for group in self.param_groups:
            group.update(backtrack_coeff=backtrack_coeff, max_backtracks=max_backtracks)

"""PPO's gradients by hand, fenced: the backward pass of :class:`~pgtorchrl.objectives.ppo.ClipPPOLoss`
written out for MLP actors and critics, beside autograd's (the plain path it replaces).

Why it exists: CleanRL's MuJoCo settings take 320 minibatch steps of 64 samples per 2048 frames,
and on 64 x 64 matrices eager autograd's bookkeeping costs more than the maths: measured here
(HalfCheetah-v5, (64, 64) tanh networks, 1 thread) the loss's forward with the graph and
``backward()`` took about 1.2 ms against 0.7 ms for the same forward without a graph and these
few matrix products. Everything here is the chain rule, term by term, on plain tensors:

- :func:`mlp_forward`, :func:`mlp_backward`: a stack of ``nn.Linear`` layers and ``Tanh`` / ``ReLU``
  activations (TorchRL's ``MLP``, :func:`~pgtorchrl.modules.plain_mlp.mlp_layers`), its activations
  kept for the backward;
- :func:`surrogate_log_prob_grad`: the clipped surrogate's gradient with respect to each sample's
  log-probability;
- :func:`critic_value_grad`: the (clipped) value regression's gradient with respect to the value;
- :func:`gaussian_grads`, :func:`categorical_logits_grad`: through the policy's log-probability
  and entropy to its network's output.

The gradients are autograd's up to float rounding. Where a ``minimum`` or ``maximum`` ties (a ratio
or a value inside its clip range: most samples), autograd splits the gradient between the two
branches and this takes the unclipped one; the two branches' gradients are then equal (for the
value loss: except where the clipped and unclipped values lie exactly symmetric about the target).
:meth:`ClipPPOLoss.forward_backward <pgtorchrl.objectives.ppo.ClipPPOLoss.forward_backward>`
uses them where :meth:`~pgtorchrl.objectives.ppo.ClipPPOLoss.analytic_path` holds and autograd
everywhere else; ``tests/test_ppo_gradients.py`` checks them against autograd for every option.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from pgtorchrl.modules.operands import operand
from pgtorchrl.modules.plain_mlp import mlp_output

__all__ = [
    "mlp_forward",
    "mlp_backward",
    "surrogate_log_prob_grad",
    "ClippedValue",
    "critic_value_grad",
    "gaussian_grads",
    "categorical_logits_grad",
]


def mlp_forward(layers: list[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The output of ``layers`` (:func:`~pgtorchrl.modules.plain_mlp.mlp_layers`) on ``x`` (a
    ``[N, features]`` batch), and the tape :func:`mlp_backward` reads: each linear layer's input
    and each activation's output."""
    tape: list[torch.Tensor] = []
    return mlp_output(layers, x, tape), tape


def mlp_backward(
    layers: list[nn.Module], tape: list[torch.Tensor], grad_out: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The gradients of the layers' weights and biases, as ``(parameter, gradient)`` pairs, given
    the gradient ``grad_out`` at the output of the :func:`mlp_forward` that wrote ``tape``:
    ``dW = g^T x``, ``db = sum g``, ``dx = g W``, through ``tanh`` as ``g (1 - y^2)`` and through
    ``ReLU`` as ``g [y > 0]``."""
    grads: list[tuple[torch.Tensor, torch.Tensor]] = []
    g = grad_out
    for i in range(len(layers) - 1, -1, -1):
        layer, saved = layers[i], tape[i]
        if isinstance(layer, nn.Linear):
            grads += [(layer.bias, g.sum(0)), (layer.weight, g.t().mm(saved))]
            if i > 0:
                g = g.mm(layer.weight)
        elif isinstance(layer, nn.Tanh):
            g = g * (operand(1.0, saved) - saved * saved)
        else:
            g = g * (saved > 0)
    return grads


def surrogate_log_prob_grad(gain: torch.Tensor, gain_clip: torch.Tensor, unclipped: torch.Tensor) -> torch.Tensor:
    r"""The gradient of :math:`-\frac1N \sum_i \min(e^{w_i} A_i, e^{\mathrm{clip}(w_i)} A_i)`
    (``loss_objective``) with respect to each :math:`w_i = \log\pi(a_i|s_i) - \log\pi_{old}(a_i|s_i)`:
    :math:`-\frac1N e^{w_i} A_i` where the unclipped term is the minimum, else
    :math:`-\frac1N e^{\mathrm{clip}(w_i)} A_i [lo \le w_i \le hi]` (``clamp`` passes its bounds).
    Given the two terms ``gain`` :math:`e^{w_i} A_i` and ``gain_clip`` and where ``unclipped``
    (:math:`\mathrm{clip}(w_i) = w_i`), shapes ``[N, 1]``; returns ``[N, 1]``."""
    return torch.where(gain <= gain_clip, gain, gain_clip * unclipped) / operand(-gain.shape[0], gain)


def _distance_grad(diff: torch.Tensor, loss_function: str) -> torch.Tensor:
    """The derivative of TorchRL's ``distance_loss(target, v, loss_function)`` in ``v``, at ``diff = v - target``."""
    if loss_function == "l2":
        return diff + diff  # 2 * diff, exactly
    if loss_function == "l1":
        return diff.sign()
    if loss_function == "smooth_l1":
        return diff.clamp(-1.0, 1.0)
    raise NotImplementedError(f"no gradient written for loss_critic_type {loss_function!r}")


class ClippedValue(NamedTuple):
    r"""The clipped branch of PPO's value regression, as the loss's forward computed it:
    ``value_clip`` :math:`V^{old} + \mathrm{clip}(V - V^{old}, \pm\epsilon_V)`, the unclipped and
    clipped losses per sample, and where ``clamp`` passed :math:`V - V^{old}` unchanged."""

    value_clip: torch.Tensor
    loss: torch.Tensor
    loss_clip: torch.Tensor
    inside: torch.Tensor


def critic_value_grad(
    value: torch.Tensor,
    target: torch.Tensor,
    loss_function: str,
    critic_coeff: float | torch.Tensor,
    clipped: ClippedValue | None = None,
) -> torch.Tensor:
    r"""The gradient of ``loss_critic`` :math:`= \frac{c}{N}\sum_i \max(d(V_i, y_i), d(V^{old}_i +
    \mathrm{clip}(V_i - V^{old}_i, \pm\epsilon_V), y_i))` (the maximum only with ``clip_value``:
    ``clipped``) with respect to each value :math:`V_i`; shapes ``[N, 1]``."""
    n = value.shape[0]
    scale = critic_coeff / (operand(n, value) if isinstance(critic_coeff, torch.Tensor) else n)
    grad = _distance_grad(value - target, loss_function)
    if clipped is None:
        return scale * grad
    grad_clip = _distance_grad(clipped.value_clip - target, loss_function) * clipped.inside
    return scale * torch.where(clipped.loss >= clipped.loss_clip, grad, grad_clip)


def gaussian_grads(
    grad_log_prob: torch.Tensor,
    grad_entropy: float,
    action: torch.Tensor,
    loc: torch.Tensor,
    log_std: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The gradients at a diagonal Gaussian's ``loc`` (``[N, d]``) and its state-independent
    ``log_std`` (``[d]``, :class:`~pgtorchrl.modules.models.GaussianHead`) of
    :math:`\sum_i g_i \log\pi(a_i|s_i) + g_H \sum_i H_i`, where
    :math:`\log\pi = \sum_j -\frac{(a_j-\mu_j)^2}{2\sigma_j^2} - \log\sigma_j - \log\sqrt{2\pi}` and
    :math:`H = \sum_j \frac12 + \log\sqrt{2\pi} + \log\sigma_j`: ``g (a - mu) / sigma^2`` and
    :math:`\sum_i g_i ((a-\mu)^2/\sigma^2 - 1) + N g_H`. ``grad_log_prob``: ``[N]``."""
    diff = action - loc
    inv_var = torch.exp(log_std * operand(-2.0, log_std))
    g = grad_log_prob.unsqueeze(-1)
    grad_loc = g * diff * inv_var
    grad_log_std = (g * (diff * diff * inv_var - operand(1.0, diff))).sum(0)
    if isinstance(grad_entropy, torch.Tensor):
        grad_log_std = grad_log_std + grad_entropy * loc.shape[0]
    elif grad_entropy != 0:  # no entropy term: nothing to add
        grad_log_std = grad_log_std + operand(grad_entropy * loc.shape[0], loc)
    return grad_loc, grad_log_std


def categorical_logits_grad(
    grad_log_prob: torch.Tensor, grad_entropy: torch.Tensor | float, action: torch.Tensor, logits: torch.Tensor
) -> torch.Tensor:
    r"""The gradient at a categorical policy's ``logits`` (``[N, n]``) of
    :math:`\sum_i g_i \log\pi(a_i|s_i) + g_H H_i`: ``g (onehot(a) - p)`` plus
    :math:`-g_H\, p_j (\log p_j + H)`. ``action``: one-hot ``[N, n]``; ``grad_log_prob``: ``[N]``."""
    log_p = torch.log_softmax(logits, -1)
    p = log_p.exp()
    grad = grad_log_prob.unsqueeze(-1) * (action.to(logits.dtype) - p)
    if isinstance(grad_entropy, torch.Tensor) or grad_entropy != 0:
        entropy = -(p * log_p).sum(-1, keepdim=True)
        grad = grad - grad_entropy * p * (log_p + entropy)
    return grad

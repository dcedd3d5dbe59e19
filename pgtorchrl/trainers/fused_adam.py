"""The fused Adam step, fenced: ``torch.optim.Adam(fused=True).step()`` as its two kernels, without
the Python around them, beside the optimizer's own ``step`` that it replaces.

Why it exists: CleanRL's MuJoCo PPO settings take 320 minibatch steps per 2,048 frames, each
stepping two small networks' optimizers. ``Adam.step`` wraps its fused kernel in a profiler
range, hook checks, a grad-mode switch, a per-parameter state walk and a grouping by device and
dtype: on the (64, 64) networks here the two steps took 250-430 us, through :func:`adam_step`
140-190 us (1 thread). Where none of that does anything (one parameter group on one device and
dtype, every parameter with a gradient and an initialized state, no hooks or wrapped ``step``, no
AMP scaler, plain Adam: no amsgrad, maximize, capturable or differentiable), :func:`adam_step`
calls what ``Adam.step`` ends up calling, ``torch._foreach_add_(steps, 1)`` then
``torch._fused_adam_``, with the same arguments: the same parameters and state, bit for bit
(``tests/test_fused_adam.py``, over steps, learning-rate changes and a reloaded state).
Everything else calls ``optim.step()``. The kernels are torch's private API: torch is pinned
(``constraints.txt``), and the parity test is what checks a new version.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

__all__ = ["adam_step"]

_PLAIN_OPTIONS = {"amsgrad": False, "maximize": False, "capturable": False, "differentiable": False, "fused": True}
_FUSED_DEVICES = ("cpu", "cuda")


def _kernel_arguments(optim: torch.optim.Optimizer):
    """``(group, params, grads, exp_avgs, exp_avg_sqs, steps)`` where the fused kernels alone do
    what ``optim.step()`` does, else ``None``."""
    if type(optim) is not torch.optim.Adam or len(optim.param_groups) != 1:
        return None
    if "step" in vars(optim):  # a wrapped step (an LR scheduler's counter, a user's patch) must run
        return None
    if optim._optimizer_step_pre_hooks or optim._optimizer_step_post_hooks:
        return None
    if _global_optimizer_pre_hooks or _global_optimizer_post_hooks or getattr(optim, "grad_scale", None) is not None:
        return None
    group = optim.param_groups[0]
    if any(group.get(k) != v for k, v in _PLAIN_OPTIONS.items()) or group.get("decoupled_weight_decay", False):
        return None
    if isinstance(group["lr"], torch.Tensor) or any(isinstance(b, torch.Tensor) for b in group["betas"]):
        return None
    params = group["params"]
    grads = [p.grad for p in params]
    if not params or any(g is None for g in grads):
        return None
    first = params[0]
    if first.device.type not in _FUSED_DEVICES or first.is_complex() or first.is_sparse:
        return None
    states = [optim.state.get(p) or {} for p in params]
    if any("exp_avg" not in s for s in states):
        return None  # the first step initializes the state: optim.step()
    exp_avgs = [s["exp_avg"] for s in states]
    exp_avg_sqs = [s["exp_avg_sq"] for s in states]
    steps = [s["step"] for s in states]
    for tensors in (params, grads, exp_avgs, exp_avg_sqs, steps):
        if any(t.device != first.device or t.layout != torch.strided for t in tensors):
            return None
    if any(t.dtype != first.dtype for tensors in (params, grads, exp_avgs, exp_avg_sqs) for t in tensors):
        return None
    return group, params, grads, exp_avgs, exp_avg_sqs, steps


def adam_step(optim: torch.optim.Optimizer) -> None:
    """``optim.step()``: by its fused kernels directly where nothing else in ``step`` applies
    (see the module), else by ``optim.step()`` itself."""
    arguments = _kernel_arguments(optim)
    if arguments is None:
        optim.step()
        return
    group, params, grads, exp_avgs, exp_avg_sqs, steps = arguments
    beta1, beta2 = group["betas"]
    with torch.no_grad():  # Adam.step's grad mode (differentiable=False)
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],  # max_exp_avg_sqs: no amsgrad
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

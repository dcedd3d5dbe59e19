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
(``tests/test_fused_adam.py``, over steps, learning-rate changes and a reloaded state). On CPU the
step counters are incremented by a list of 0-dim ones of their dtype rather than the number 1:
torch's CPU foreach falls back to one ``add_`` per counter either way, and with a number each one
wraps it into a tensor first (17 us against 6 for 7 counters here); an integer-valued float plus
one is exact, so the counters are the same.
Everything else calls ``optim.step()``; :func:`zero_grad` is ``optim.zero_grad(set_to_none=True)``
without its profiler range. The kernels are torch's private API: torch is pinned
(``constraints.txt``), and the parity test is what checks a new version.
"""

from __future__ import annotations

import weakref

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

__all__ = ["adam_step", "zero_grad"]

_PLAIN_OPTIONS = {"amsgrad": False, "maximize": False, "capturable": False, "differentiable": False, "fused": True}
_FUSED_DEVICES = ("cpu", "cuda")


def _kernel_arguments(optim: torch.optim.Optimizer):
    """``(group, params, grads, exp_avgs, exp_avg_sqs, steps, increments)`` where the fused kernels
    alone do what ``optim.step()`` does (``increments``: what the counters are incremented by,
    :func:`_increments`), else ``None``."""
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
    if not params or any(g is None or g.layout != torch.strided for g in grads):
        return None  # (a gradient has its parameter's device and dtype: torch's .grad setter checks)
    states = [optim.state.get(p) or {} for p in params]
    if any("exp_avg" not in s for s in states):
        return None  # the first step initializes the state: optim.step()
    exp_avgs = [s["exp_avg"] for s in states]
    exp_avg_sqs = [s["exp_avg_sq"] for s in states]
    steps = [s["step"] for s in states]
    tensors = (*params, *exp_avgs, *exp_avg_sqs, *steps)
    checked = _CHECKED.get(optim)
    if checked is None or len(checked[0]) != len(tensors) or any(a is not b for a, b in zip(checked[0], tensors)):
        if not _one_device_and_dtype(params, exp_avgs, exp_avg_sqs, steps):
            return None
        checked = _CHECKED[optim] = (tensors, _increments(steps))  # the same tensors need no second look
    return group, params, grads, exp_avgs, exp_avg_sqs, steps, checked[1]


_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Per optimizer, the parameters and state tensors :func:`_one_device_and_dtype` last accepted
(references, not ids: a replaced tensor is never taken for its predecessor), and what
:func:`_increments` gave for their step counters. Looking at their devices and dtypes again at
every step cost 20 us of the 60 here."""


def _increments(steps: list[torch.Tensor]) -> list[torch.Tensor] | int:
    """What ``adam_step`` adds to the step counters: on CPU, with counters of one dtype, one 0-dim
    one of that dtype per counter (see the module); else the number 1, as ``Adam.step``."""
    first = steps[0]
    if first.device.type != "cpu" or any(s.dtype != first.dtype for s in steps):
        return 1
    return [torch.ones((), dtype=first.dtype)] * len(steps)  # read only: one tensor serves every counter


def _one_device_and_dtype(params, exp_avgs, exp_avg_sqs, steps) -> bool:
    """Whether the fused kernel takes these: real dense tensors on one CPU or CUDA device, the
    parameters and their moments of one dtype."""
    first = params[0]
    if first.device.type not in _FUSED_DEVICES or first.is_complex() or first.is_sparse:
        return False
    for tensors in (params, exp_avgs, exp_avg_sqs, steps):
        if any(t.device != first.device or t.layout != torch.strided for t in tensors):
            return False
    return all(t.dtype == first.dtype for tensors in (params, exp_avgs, exp_avg_sqs) for t in tensors)


def adam_step(optim: torch.optim.Optimizer) -> None:
    """``optim.step()``: by its fused kernels directly where nothing else in ``step`` applies
    (see the module), else by ``optim.step()`` itself."""
    arguments = _kernel_arguments(optim)
    if arguments is None:
        optim.step()
        return
    group, params, grads, exp_avgs, exp_avg_sqs, steps, increments = arguments
    beta1, beta2 = group["betas"]
    with torch.no_grad():  # Adam.step's grad mode (differentiable=False)
        torch._foreach_add_(steps, increments)
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


def zero_grad(optim: torch.optim.Optimizer) -> None:
    """``optim.zero_grad(set_to_none=True)``: every parameter's ``.grad`` set to ``None``, as
    ``Optimizer.zero_grad`` does it, without its profiler range (12 us a call here); an optimizer
    with its own ``zero_grad`` calls it."""
    if type(optim).zero_grad is not torch.optim.Optimizer.zero_grad:
        optim.zero_grad(set_to_none=True)
        return
    for group in optim.param_groups:
        for param in group["params"]:
            param.grad = None

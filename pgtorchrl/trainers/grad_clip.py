"""Gradient-norm clipping, fenced: ``torch.nn.utils.clip_grad_norm_`` without its per-call
grouping, beside the torch call it replaces.

Why it exists: CleanRL's MuJoCo PPO settings take 320 minibatch steps per 2,048 frames, each
clipping two small networks' gradients. ``clip_grad_norm_`` groups the gradients by device and
dtype and checks each group for foreach support at every call: measured here (1 thread, the
(64, 64) actor's gradients) 123 us a call, 82 us without that Python. When
every gradient is a plain strided tensor on one device with one dtype, :func:`clip_grad_norm`
runs the same kernels in the same order (``_foreach_norm``, the norm of their stack, the clamped
coefficient, ``_foreach_mul_``): the same norm and the same clipped gradients, bit for bit
(``tests/test_grad_clip.py``). On CPU, float32 and float64, the coefficient is computed from the
norm's value in numpy scalars of its dtype (the same IEEE operations; three tensor ops cost
19 us here), the gradients are not multiplied by a coefficient of 1, and the coefficient reaches
``_foreach_mul_`` as a 0-dim tensor of that dtype: with a Python number torch's CPU foreach falls
back to one ``mul_`` per gradient that wraps the number into a tensor each time (20 us against 7
for the actor's 7 gradients here), and either way each element is multiplied by the same float.
Anything else goes to torch's function.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch.nn.utils import clip_grad_norm_

__all__ = ["clip_grad_norm"]

_FOREACH_DEVICES = ("cpu", "cuda")
_SCALARS: dict[torch.dtype, type[np.floating]] = {torch.float32: np.float32, torch.float64: np.float64}
"""The dtypes whose clipping coefficient :func:`_clip_coef` computes on the host."""


def _one_foreach_group(grads: list[torch.Tensor]) -> bool:
    """Whether torch would put ``grads`` in one group and take its foreach path for it."""
    first = grads[0]
    if first.device.type not in _FOREACH_DEVICES:
        return False
    return all(
        type(g) is torch.Tensor and g.layout == torch.strided and g.device == first.device and g.dtype == first.dtype
        for g in grads
    )


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float | None) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_(parameters, max_norm)`` with the 2-norm (``None``: no
    bound, torch's ``inf``): the total norm of the parameters' gradients, returned, the gradients
    scaled in place by ``min(max_norm / (norm + 1e-6), 1)``."""
    params = list(parameters)
    bound = float("inf") if max_norm is None else float(max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or not _one_foreach_group(grads):
        return clip_grad_norm_(params, bound)
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    scalar = _SCALARS.get(total.dtype) if total.device.type == "cpu" else None
    if scalar is None:
        torch._foreach_mul_(grads, torch.clamp(bound / (total + 1e-6), max=1.0))  # 1 without a bound, as torch's
        return total
    coef = _clip_coef(scalar(total.item()), scalar(bound))
    if coef != 1.0:  # x * 1.0 is x: nothing to scale
        torch._foreach_mul_(grads, torch.from_numpy(np.asarray(coef)))  # a 0-dim tensor of the gradients' dtype
    return total


def _clip_coef(total: np.floating, bound: np.floating) -> np.floating:
    """``torch.clamp(bound / (total + 1e-6), max=1.0)`` for a CPU ``total``, in numpy scalars of
    its dtype: the same IEEE operations as torch's on a 0-dim tensor (the scalars cast to the
    dtype, then ``add``, ``reciprocal`` and ``mul``, which is how ``Tensor.__rtruediv__`` divides,
    and a NaN-keeping ``minimum``), without three tensor ops (about 19 us here)."""
    one = total.dtype.type(1.0)
    return np.minimum((one / (total + total.dtype.type(1e-6))) * bound, one)

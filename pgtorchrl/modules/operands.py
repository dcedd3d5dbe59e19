"""Python numbers as cached 0-dim tensors, fenced: the constants of the policy's and PPO's hand-written
maths (:mod:`pgtorchrl.modules.fast_policies`, :mod:`pgtorchrl.objectives.ppo_gradients`), beside
the plain Python numbers they replace.

Why it exists: on CPU, torch turns a Python number in ``x * 0.5`` or ``1 - x`` into a double
0-dim tensor and then converts it to ``x``'s dtype at every call (``aten::to``, a copy and an
allocation): measured here on a 64 x 64 float32 matrix, 1 thread, ``x * 0.5`` took 4.5 us against
2.3 us for ``x * c`` with ``c`` a float32 0-dim tensor, and PPO's MuJoCo minibatch step made about
20 such conversions. The arithmetic is the same: torch computes ``x * 0.5`` in ``x``'s dtype with the
number rounded to that dtype, which is what :func:`operand` holds (``tests/test_operands.py``
checks the results bit for bit against the plain numbers). Only CPU float32 and float64 tensors get
one: elsewhere (CUDA, half precision, where a number may stay in the kernel's wider math type) the
number itself is returned.
"""

from __future__ import annotations

import torch

__all__ = ["operand"]

_DTYPES = (torch.float32, torch.float64)
_CACHE: dict[tuple[float, torch.dtype, bool], torch.Tensor | float] = {}


def operand(value: float, like: torch.Tensor) -> torch.Tensor | float:
    """``value`` as a 0-dim tensor of ``like``'s dtype, for arithmetic with ``like`` (``x *
    operand(0.5, x)`` is ``x * 0.5``), where ``like`` is a CPU float32 or float64 tensor, else
    ``value``; cached, so never written to. Zero stays a number (``-0.0 == 0.0`` as a key)."""
    key = (value, like.dtype, like.is_cpu)
    found = _CACHE.get(key)  # one lookup: this is on the per-op path
    return found if found is not None else _new_operand(key)


def _new_operand(key: tuple[float, torch.dtype, bool]) -> torch.Tensor | float:
    value, dtype, is_cpu = key
    if value == 0:
        return value
    found = _CACHE[key] = torch.tensor(value, dtype=dtype) if dtype in _DTYPES and is_cpu else value
    return found

"""TorchRL ``MLP``s run as plain tensor maths, fenced: the forward of a stack of ``nn.Linear`` and
``Tanh`` / ``ReLU`` layers without ``nn.Module`` calls, beside the module call it replaces.

Why it exists: acting on one observation a step (one MuJoCo env per core, 2,048 steps per PPO
batch), a (64, 64) tanh policy's ``module(obs)`` took 62 us here (1 thread, no grad), the same
layers called as functions 19 us: each module call adds its hooks' checks and Python dispatch,
which on a 1 x 64 matrix costs more than the product. The outputs are the module's bit for bit
(the same ATen kernels: ``nn.Linear`` calls ``F.linear``, ``nn.Tanh`` ``torch.tanh``);
``tests/test_plain_mlp.py`` checks it on every shipped policy shape.

- :func:`mlp_layers`: the layers of a module this applies to, else ``None`` (the caller then calls
  the module);
- :func:`mlp_output`: their output on an input, optionally keeping what a hand-written backward
  needs (:mod:`pgtorchrl.objectives.ppo_gradients`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks
from torchrl.modules import MLP

__all__ = ["mlp_layers", "mlp_output"]

_ACTIVATIONS = (nn.Tanh, nn.ReLU)
_SEQUENTIAL_FORWARDS = (nn.Sequential.forward, MLP.forward)
"""``nn.Sequential``'s call and TorchRL's ``MLP``'s (the same for one input and no reshaped output)."""


def mlp_layers(module: nn.Module, trainable: bool = False) -> list[nn.Module] | None:
    """``module``'s layers when it is an ``nn.Sequential`` or TorchRL ``MLP`` (not a subclass with
    its own forward) of ``nn.Linear`` layers with biases (exactly ``nn.Linear``), each followed by
    at most one ``Tanh`` or ``ReLU``, called as ``Sequential`` calls it (one input, no reshaped
    output, no hooks), and with ``trainable`` every parameter trainable; else ``None``."""
    if not isinstance(module, nn.Sequential) or type(module).forward not in _SEQUENTIAL_FORWARDS:
        return None  # a subclass with its own forward does something else
    if len(module) == 0 or getattr(module, "_reshape_out", False):
        return None
    layers = list(module)
    if type(layers[0]) is not nn.Linear or (trainable and not all(p.requires_grad for p in module.parameters())):
        return None
    if _global_forward_hooks or _global_forward_pre_hooks:
        return None
    if any(m._forward_hooks or m._forward_pre_hooks for m in module.modules()):
        return None  # a hook must see its call
    for previous, layer in zip(layers, layers[1:], strict=False):
        if type(layer) is nn.Linear:  # exactly: a subclass (TorchRL's NoisyLinear) computes something else
            continue
        if type(layer) not in _ACTIVATIONS or type(previous) is not nn.Linear:
            return None
    if any(linear.bias is None for linear in layers if isinstance(linear, nn.Linear)):
        return None
    return layers


def mlp_output(layers: list[nn.Module], x: torch.Tensor, tape: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The output of :func:`mlp_layers`' ``layers`` on ``x`` (what the module returns, bit for
    bit). With ``tape``, appends each linear layer's input and each activation's output to it."""
    for layer in layers:
        if isinstance(layer, nn.Linear):
            if tape is not None:
                tape.append(x)
            x = F.linear(x, layer.weight, layer.bias)
        else:
            x = torch.tanh(x) if isinstance(layer, nn.Tanh) else torch.relu(x)
            if tape is not None:
                tape.append(x)
    return x

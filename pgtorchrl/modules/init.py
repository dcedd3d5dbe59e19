"""Orthogonal initialization of a policy or value network, as CleanRL's ``layer_init`` and
stable-baselines3's ``ortho_init`` do it.

Every ``nn.Linear`` and ``nn.Conv2d`` weight gets an orthogonal matrix (Saxe et al. 2014) of gain
:math:`\\sqrt 2` and a zero bias; the last linear layer (the head) gets gain ``head_gain``
instead: 0.01 for a policy head, so that the initial policy is close to uniform (or its mean close
to 0), and 1 for a value head. Andrychowicz et al. (2021, "What matters in on-policy RL") and
Engstrom et al. (2020, "Implementation matters in deep policy gradients") measure the difference it
makes; CleanRL's ``ppo_atari.py`` and SB3's ``ActorCriticPolicy`` (``ortho_init=True``, its
default) use exactly these gains. Recurrent cells, a Gaussian policy's ``log_std`` and anything
that is not a linear or convolution layer keep PyTorch's default initialization.

The orthogonal matrices come from a QR factorization whose last bits depend on how many threads
LAPACK uses (up to 3e-7 on a 128x1600 weight between 1 and 2 threads), so they are drawn on one
thread: the same seed gives the same network on a 2-core laptop, a 16-core server and in a process
that set its own thread count (the trainer sets 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["POLICY_HEAD_GAIN", "VALUE_HEAD_GAIN", "orthogonal_init"]

#: CleanRL's and SB3's gain of a policy head (``std=0.01`` in CleanRL's ``layer_init``).
POLICY_HEAD_GAIN = 0.01
#: Their gain of a value head.
VALUE_HEAD_GAIN = 1.0


@contextmanager
def _one_thread() -> Iterator[None]:
    """Runs its block on one intra-op thread, then restores the caller's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def orthogonal_init(network: nn.Module, head_gain: float) -> nn.Module:
    """Initializes ``network``'s linear and convolution layers in place (see the module's
    docstring) and returns it: gain :math:`\\sqrt 2` everywhere, ``head_gain`` on the last
    ``nn.Linear`` in module order, zero biases.

    >>> net = orthogonal_init(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)), POLICY_HEAD_GAIN)
    >>> w = net[2].weight
    >>> torch.allclose(w @ w.T, 0.01**2 * torch.eye(2), atol=1e-6), float(net[0].bias.abs().max())
    (True, 0.0)
    """
    layers = [m for m in network.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    linear = [m for m in layers if isinstance(m, nn.Linear)]
    if not linear:
        raise ValueError(f"orthogonal_init: {type(network).__name__} has no linear layer to use as its head")
    with _one_thread():  # reproducible whatever the thread count (see the module's docstring)
        for layer in layers:
            nn.init.orthogonal_(layer.weight, gain=head_gain if layer is linear[-1] else math.sqrt(2))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return network

"""The trainer's Adam step (:mod:`pgtorchrl.trainers.fused_adam`) is ``optim.step()`` bit for bit:
parameters and optimizer state after every step, across learning-rate changes and a reloaded
state; optimizers it does not cover take their own ``step``."""

import copy
import warnings

import pytest
import torch
from torch import nn

from pgtorchrl.trainers.fused_adam import _kernel_arguments, adam_step


def _net(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(17, 64), nn.Tanh(), nn.Linear(64, 6)).to(dtype)


def _grads(net, k):
    gen = torch.Generator().manual_seed(100 + k)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype) * 10 ** (k % 3 - 1)


def _same(a: torch.optim.Optimizer, b: torch.optim.Optimizer, net_a, net_b):
    assert all(torch.equal(x, y) for x, y in zip(net_a.parameters(), net_b.parameters()))
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        sa, sb = a.state[pa], b.state[pb]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.01, "eps": 1e-5, "betas": (0.8, 0.95)}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_same_parameters_and_state_as_adams_step(options, dtype):
    net_a, net_b = _net(dtype=dtype), _net(dtype=dtype)
    a = torch.optim.Adam(net_a.parameters(), lr=3e-4, fused=True, **options)
    b = torch.optim.Adam(net_b.parameters(), lr=3e-4, fused=True, **options)
    for k in range(30):
        if k == 12:  # the trainer's annealing writes the groups' lr
            for opt in (a, b):
                opt.param_groups[0]["lr"] = 1.7e-4
        _grads(net_a, k)
        _grads(net_b, k)
        a.step()
        adam_step(b)
        assert k == 0 or _kernel_arguments(b) is not None  # after the first (initializing) step: the kernels
        _same(a, b, net_a, net_b)
        assert float(b.state[next(net_b.parameters())]["step"]) == k + 1


def test_a_reloaded_state_continues_as_adams_step():
    net_a, net_b = _net(), _net()
    a = torch.optim.Adam(net_a.parameters(), lr=1e-3, fused=True)
    for k in range(5):
        _grads(net_a, k)
        a.step()
    net_b.load_state_dict(net_a.state_dict())
    b = torch.optim.Adam(net_b.parameters(), lr=1e-3, fused=True)
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # resume: a checkpoint's copy of the state
    for k in range(5, 12):
        _grads(net_a, k)
        _grads(net_b, k)
        a.step()
        adam_step(b)
        _same(a, b, net_a, net_b)


def test_optimizers_it_does_not_cover_take_their_own_step():
    cases = {
        "not fused": lambda ps: torch.optim.Adam(ps, lr=1e-3),
        "AdamW": lambda ps: torch.optim.AdamW(ps, lr=1e-3, fused=True),
        "amsgrad": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True, amsgrad=True),
        "SGD": lambda ps: torch.optim.SGD(ps, lr=1e-3),
    }
    for name, make in cases.items():
        net_a, net_b = _net(), _net()
        a, b = make(net_a.parameters()), make(net_b.parameters())
        for k in range(3):
            _grads(net_a, k)
            _grads(net_b, k)
            a.step()
            adam_step(b)
            assert _kernel_arguments(b) is None, name
        assert all(torch.equal(x, y) for x, y in zip(net_a.parameters(), net_b.parameters())), name
    net = _net()
    optim = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    _grads(net, 0)
    optim.step()
    calls = []
    handle = optim.register_step_pre_hook(lambda *args: calls.append(1))
    adam_step(optim)  # a hook must see its step
    handle.remove()
    optim.step = lambda *args, _step=optim.step: (calls.append(2), _step(*args))[1]
    adam_step(optim)  # a wrapped step must run
    del optim.step
    scheduler = torch.optim.lr_scheduler.StepLR(optim, step_size=1, gamma=0.5)  # it wraps optim.step too
    assert _kernel_arguments(optim) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when the scheduler steps before the optimizer did
        adam_step(optim)
        scheduler.step()
    net[0].bias.grad = None  # a parameter without a gradient: Adam's step leaves it alone
    before = net[0].bias.clone()
    adam_step(optim)
    assert calls == [1, 2] and torch.equal(net[0].bias, before)


def test_state_tensors_are_looked_at_again_when_they_are_replaced(monkeypatch):
    """The devices and dtypes are checked once per set of state tensors: a reloaded state (new
    tensors) is checked again, and one the kernel cannot take sends the step to ``optim.step()``."""
    import pgtorchrl.trainers.fused_adam as fused_adam

    checks = []
    real = fused_adam._one_device_and_dtype
    monkeypatch.setattr(fused_adam, "_one_device_and_dtype", lambda *a: checks.append(1) or real(*a))
    net = _net()
    optim = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    for k in range(4):
        _grads(net, k)
        adam_step(optim)
    assert len(checks) == 1  # steps 2-4 (the first one initializes the state through optim.step())
    optim.load_state_dict(copy.deepcopy(optim.state_dict()))
    _grads(net, 4)
    adam_step(optim)
    assert len(checks) == 2
    first = next(net.parameters())
    optim.state[first]["exp_avg"] = optim.state[first]["exp_avg"].double()  # not one dtype: not the kernels
    assert _kernel_arguments(optim) is None and len(checks) == 3


def test_zero_grad_sets_every_gradient_to_none_as_the_optimizers_own():
    from pgtorchrl.trainers.fused_adam import zero_grad

    net = _net()
    optim = torch.optim.Adam([{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.1}])
    _grads(net, 0)
    zero_grad(optim)
    assert all(p.grad is None for p in net.parameters())

    class Keeps(torch.optim.SGD):  # its own zero_grad (zeros, not None) is called
        def zero_grad(self, set_to_none=True):
            super().zero_grad(set_to_none=False)

    keeps = Keeps(net.parameters(), lr=0.1)
    _grads(net, 1)
    zero_grad(keeps)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())

"""pgtorchrl's gradient clipping (:mod:`pgtorchrl.trainers.grad_clip`) is torch's
``clip_grad_norm_``, bit for bit: the returned norm and the clipped gradients."""

import pytest
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_

from pgtorchrl.trainers.grad_clip import clip_grad_norm


def _both(make_params, max_norm):
    """(torch's norm and gradients, pgtorchrl's) on two copies of the same parameters."""
    results = []
    for clip in (
        lambda ps: clip_grad_norm_(ps, float("inf") if max_norm is None else max_norm),
        lambda ps: clip_grad_norm(ps, max_norm),
    ):
        params = make_params()
        norm = clip(params)
        results.append((norm, [None if p.grad is None else p.grad.clone() for p in params]))
    return results


def _mlp_params(scale, seed=0, dtype=torch.float32, none_grad=False):
    def make():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(17, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 6)).to(dtype)
        params = list(net.parameters())
        for p in params:
            p.grad = torch.randn_like(p) * scale
        if none_grad:
            params[1].grad = None
        return params

    return make


@pytest.mark.parametrize("scale", [1e-4, 0.01, 1.0, 100.0])
@pytest.mark.parametrize("max_norm", [0.5, 1, 10.0, None])
@pytest.mark.parametrize("case", ["float32", "float64", "a_grad_is_none"])
def test_the_same_norm_and_clipped_gradients_as_torch(scale, max_norm, case):
    make = _mlp_params(
        scale, dtype=torch.float64 if case == "float64" else torch.float32, none_grad=case == "a_grad_is_none"
    )
    (norm_a, grads_a), (norm_b, grads_b) = _both(make, max_norm)
    assert norm_a.dtype == norm_b.dtype and torch.equal(norm_a, norm_b)
    for a, b in zip(grads_a, grads_b):
        assert (a is None and b is None) or torch.equal(a, b)
    if max_norm is not None and norm_a > max_norm:  # it clipped: the clipped norm is the bound
        clipped = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads_b if g is not None]))
        assert clipped == pytest.approx(max_norm, rel=1e-5)


def test_mixed_dtypes_and_no_gradients_go_to_torchs_function():
    def mixed():
        a = nn.Parameter(torch.randn(4))
        b = nn.Parameter(torch.randn(3, dtype=torch.float64))
        a.grad, b.grad = torch.full((4,), 2.0), torch.full((3,), 3.0, dtype=torch.float64)
        return [a, b]

    (norm_a, grads_a), (norm_b, grads_b) = _both(mixed, 1.0)
    assert torch.equal(norm_a, norm_b) and all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    empty = [nn.Parameter(torch.randn(3))]
    assert torch.equal(clip_grad_norm(empty, 1.0), clip_grad_norm_(empty, 1.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_host_clipping_coefficient_is_torchs_tensor_arithmetic(dtype):
    """The coefficient computed in numpy scalars equals torch's ``clamp(bound / (norm + 1e-6),
    max=1)`` on a 0-dim tensor for norms over 16 orders of magnitude, 0, inf and NaN."""
    import numpy as np

    from pgtorchrl.trainers.grad_clip import _SCALARS, _clip_coef

    g = torch.Generator().manual_seed(0)
    norms = torch.rand(3000, generator=g, dtype=dtype) * 10.0 ** torch.randint(-8, 8, (3000,), generator=g)
    norms = torch.cat([norms, torch.tensor([0.0, 1e-6, 0.5, float("inf"), float("nan")], dtype=dtype)])
    scalar = _SCALARS[dtype]
    with np.errstate(invalid="ignore"):
        for bound in (0.5, 0.7, 1.0, 3.3, float("inf")):
            want = torch.clamp(bound / (norms + 1e-6), max=1.0)
            got = torch.tensor([float(_clip_coef(scalar(n), scalar(bound))) for n in norms.tolist()], dtype=dtype)
            assert torch.equal(got.isnan(), want.isnan()), bound
            assert torch.equal(got[~got.isnan()], want[~want.isnan()]), bound


def test_non_finite_gradients_clip_as_torchs():
    def infinite():
        torch.manual_seed(0)
        params = [nn.Parameter(torch.randn(5)), nn.Parameter(torch.randn(2, 3))]
        params[0].grad, params[1].grad = torch.randn(5), torch.randn(2, 3)
        params[1].grad[0, 1] = float("inf")
        return params

    (norm_a, grads_a), (norm_b, grads_b) = _both(infinite, 0.5)
    assert torch.equal(norm_a, norm_b)
    for a, b in zip(grads_a, grads_b):
        assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a[~a.isnan()], b[~b.isnan()])

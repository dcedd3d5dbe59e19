"""pgtorchrl.modules.operands: a cached 0-dim tensor in place of a Python number gives the same bits."""

import math

import pytest
import torch

from pgtorchrl.modules.operands import operand

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))
NUMBERS = [1.0, -2.0, 0.5, 0.1, 1 / 3, -64, 2048, LOG_SQRT_2PI, 0.5 + LOG_SQRT_2PI]


def bits(x: torch.Tensor) -> torch.Tensor:
    return x.view(torch.int32 if x.dtype == torch.float32 else torch.int64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", NUMBERS)
def test_arithmetic_with_the_operand_is_arithmetic_with_the_number_bit_for_bit(dtype, value):
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=dtype) * 3
    c = operand(value, x)
    assert isinstance(c, torch.Tensor) and c.dim() == 0 and c.dtype == dtype
    for plain, cached in [
        (x * value, x * c),
        (value * x, c * x),
        (x + value, x + c),
        (x - value, x - c),
        (value - x, c - x),
        (x / value, x / c),
    ]:
        assert torch.equal(bits(plain), bits(cached))


def test_the_operand_is_cached_and_stays_a_number_off_cpu_floats_and_for_zero():
    x = torch.ones(3)
    assert operand(0.5, x) is operand(0.5, torch.zeros(2))
    assert operand(0.5, x) is not operand(0.5, x.double())
    assert operand(0.5, x.half()) == 0.5 and not isinstance(operand(0.5, x.half()), torch.Tensor)
    assert operand(0.5, torch.ones(3, device="meta")) == 0.5
    negative_zero = operand(-0.0, x)
    assert not isinstance(negative_zero, torch.Tensor) and math.copysign(1, negative_zero) < 0
    assert not isinstance(operand(0.0, x), torch.Tensor)

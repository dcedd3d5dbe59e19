"""Action distributions for the discrete action spaces beyond one ``Discrete``: ``MultiDiscrete``
(independent categoricals, TorchRL's ``MultiOneHot`` encoding), ``MultiBinary`` (independent
Bernoullis, TorchRL's ``Binary``) and masked ``Discrete`` actions (TorchRL's
``MaskedOneHotCategorical``, the mask read from an observation key such as ``action_mask``).

Each is a ``torch.distributions.Distribution`` a ``ProbabilisticActor`` builds from ``logits`` (and
``mask``), with ``log_prob`` and ``entropy`` summed over independent components, the most probable
action as ``deterministic_sample`` (TorchRL's deterministic interaction) and a registered KL
(NPG's and TRPO's trust region).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import distributions as D
from torchrl.modules import MaskedOneHotCategorical, OneHotCategorical

__all__ = ["MultiOneHotCategorical", "IndependentBernoulli", "MaskedOneHot"]


class MultiOneHotCategorical(D.Distribution):
    r"""Independent categoricals over the components of a ``MultiDiscrete`` action with ``nvec``
    choices, each one-hot, concatenated (``[*batch, sum(nvec)]``, TorchRL's ``MultiOneHot``):
    :math:`\log \pi(a) = \sum_i \log \mathrm{softmax}(l_i)_{a_i}`, :math:`H = \sum_i H_i`.

    >>> dist = MultiOneHotCategorical(torch.zeros(5), nvec=[2, 3])
    >>> dist.sample().sum().item(), round(dist.entropy().item(), 4)  # one choice per component
    (2, 1.7918)
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, logits: torch.Tensor, nvec: Sequence[int]):
        self.nvec = [int(n) for n in nvec]
        self.logits = logits
        self.parts = [OneHotCategorical(logits=part) for part in logits.split(self.nvec, -1)]
        super().__init__(batch_shape=logits.shape[:-1], event_shape=logits.shape[-1:], validate_args=False)

    def sample(self, sample_shape: torch.Size | Sequence[int] = ()) -> torch.Tensor:
        return torch.cat([part.sample(torch.Size(sample_shape)) for part in self.parts], -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return sum(part.log_prob(v) for part, v in zip(self.parts, value.split(self.nvec, -1)))

    def entropy(self) -> torch.Tensor:
        return sum(part.entropy() for part in self.parts)

    @property
    def mode(self) -> torch.Tensor:
        return torch.cat([part.mode for part in self.parts], -1)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode


@D.register_kl(MultiOneHotCategorical, MultiOneHotCategorical)
def _kl_multi_one_hot(p: MultiOneHotCategorical, q: MultiOneHotCategorical) -> torch.Tensor:
    return sum(D.kl_divergence(a, b) for a, b in zip(p.parts, q.parts))  # type: ignore[return-value]


class IndependentBernoulli(D.Independent):
    r"""Independent Bernoullis over a ``MultiBinary`` action of ``n`` bits (TorchRL's ``Binary``):
    :math:`\log \pi(a) = \sum_i a_i \log \sigma(l_i) + (1 - a_i) \log (1 - \sigma(l_i))`.
    Samples are floats 0 and 1 (the env's spec casts them); the deterministic action sets each bit
    whose probability exceeds 1/2.

    >>> dist = IndependentBernoulli(torch.tensor([0.0, 10.0]))
    >>> dist.deterministic_sample.tolist(), round(dist.log_prob(torch.tensor([1, 1])).item(), 4)
    ([0.0, 1.0], -0.6932)
    """

    def __init__(self, logits: torch.Tensor):
        super().__init__(D.Bernoulli(logits=logits, validate_args=False), 1, validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.to(self.base_dist.logits.dtype))

    @property
    def mode(self) -> torch.Tensor:
        return (self.base_dist.logits > 0).to(self.base_dist.logits.dtype)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode


class MaskedOneHot(MaskedOneHotCategorical):
    """TorchRL's ``MaskedOneHotCategorical`` over ``logits`` with the env's ``mask`` (any 0/1
    dtype: gymnasium's ``MultiBinary`` masks arrive as int8). A masked action has probability 0:
    it is never sampled and never the deterministic choice; log-probabilities and the entropy are
    those of the distribution renormalized over the legal actions."""

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor):
        super().__init__(logits=logits, mask=mask.bool())


@D.register_kl(MaskedOneHot, MaskedOneHot)
def _kl_masked(p: MaskedOneHot, q: MaskedOneHot) -> torch.Tensor:
    """``sum_a p(a) (log p(a) - log q(a))`` over the legal actions (both masks are the batch's)."""
    legal = torch.isfinite(p.logits)  # normalized log-probabilities, -inf where masked
    # the masked entries replaced before any arithmetic, so no inf reaches the backward pass
    log_p, log_q = torch.where(legal, p.logits, 0.0), torch.where(legal, q.logits, 0.0)
    return torch.where(legal, log_p.exp() * (log_p - log_q), 0.0).sum(-1)

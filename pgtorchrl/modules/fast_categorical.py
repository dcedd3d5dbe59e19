"""The categorical fast path, fenced: sampling and scoring shortcuts for categorical policies,
next to the plain TorchRL path each one replaces.

Why it exists: on small fast envs (CartPole, the short corridor) most of a step's time is
TensorDict and ``torch.distributions`` bookkeeping, not maths. A policy shaped like
:func:`pgtorchrl.modules.models.categorical_actor` (one module writing ``logits``, then a one-hot
categorical ``ProbabilisticActor``) is therefore, where :func:`categorical_logits_net` finds one:

- sampled on plain tensors by :class:`PolicyStep` with a :class:`GumbelSampler` (its plain path,
  for every other actor: the actor called on a TensorDict under the exploration type), its
  log-probabilities taken once per batch by :func:`one_hot_log_prob`;
- scored by :func:`log_prob_and_entropy` from its logits (the plain path, taken for every other
  actor: ``actor.get_dist(td).log_prob(a)`` and ``.entropy()``);
- softmaxed by :func:`softmax` / :func:`log_softmax`, which move a short action dim to the
  front on large batches (a CPU kernel speed-up, same values).

Everything else calls these functions; ``tests/test_fast_categorical.py`` checks that each
shortcut gives what the plain path gives.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from torchrl.envs import ExplorationType, set_exploration_type
from torchrl.modules import OneHotCategorical, ProbabilisticActor

__all__ = ["categorical_logits_net", "softmax", "log_softmax", "one_hot_log_prob", "GumbelSampler", "PolicyStep",
           "log_prob_and_entropy"]


def categorical_logits_net(policy) -> TensorDictModule | None:
    """The logits network of a :func:`categorical_actor`-shaped policy (one module writing
    ``logits``, then a one-hot categorical), else ``None``. Code that only needs the logits
    (fast rollouts, the loss) uses it to skip building a distribution object."""
    if not isinstance(policy, ProbabilisticActor) or len(policy.module) != 2:
        return None
    net, head = policy.module
    if head.distribution_class is not OneHotCategorical or list(head.in_keys) != ["logits"]:
        return None
    if not isinstance(net, TensorDictModule) or list(net.out_keys) != ["logits"]:
        return None
    return net


_MOVED_SOFTMAX_NUMEL = 1000


def _over_actions(fn, logits: torch.Tensor) -> torch.Tensor:
    """``fn(logits, -1)``; on large batches computed with the action dim moved to the front:
    the same values, but PyTorch's CPU kernels are slow for a short last dim (2 actions x 30,000
    steps: 1.5 ms against 0.1 ms), which the fixed-point per-step solver hits; on small ones the
    extra views would cost more than they save."""
    if logits.numel() < _MOVED_SOFTMAX_NUMEL:
        return fn(logits, -1)
    return fn(logits.movedim(-1, 0), 0).movedim(0, -1)


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """``torch.softmax`` over the last (action) dim (see :func:`_over_actions`)."""
    return _over_actions(torch.softmax, logits)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``torch.log_softmax`` over the last (action) dim (see :func:`_over_actions`)."""
    return _over_actions(torch.log_softmax, logits)


def one_hot_log_prob(logits: torch.Tensor, action_index: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)`` at ``action_index`` (``one_hot_action.argmax(-1, keepdim=True)``),
    keeping that last dim: the log-probability ``OneHotCategorical(logits).log_prob(action)`` gives."""
    return log_softmax(logits).gather(-1, action_index)


class GumbelSampler:
    r"""One-hot categorical actions from logits by the Gumbel-max trick,
    :math:`\arg\max_a (l_a + g_a)` with :math:`g_a = -\log E_a`, :math:`E_a \sim \text{Exp}(1)`:
    an exact sample of :math:`\text{softmax}(l)`. The noise for ``steps`` steps is drawn in one
    call, so a step costs an add, an argmax and a row lookup, not a call to the random generator."""

    def __init__(self, steps: int, exploration: ExplorationType):
        self.steps, self.random = steps, exploration == ExplorationType.RANDOM
        self._noise: torch.Tensor | None = None
        self._next = steps
        self._one_hot: torch.Tensor | None = None  # the identity matrix: its rows are the one-hot actions

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """A sampled (or, when not exploring, the most probable) one-hot action."""
        if self._one_hot is None:
            self._one_hot = torch.eye(logits.shape[-1], dtype=torch.long, device=logits.device)
        if not self.random:
            return self._one_hot.index_select(0, logits.argmax(-1))
        if self._next == self.steps:
            shape = (self.steps, *logits.shape)
            self._noise = torch.empty(shape, dtype=logits.dtype, device=logits.device).exponential_().log_().neg_()
            self._next = 0
        self._next += 1
        return self._one_hot.index_select(0, (logits + self._noise[self._next - 1]).argmax(-1))


class PolicyStep:
    """A policy acting on plain tensors (a ``dict`` of observations) for up to ``steps`` steps.

    Fast path (:attr:`fast`, a categorical policy): its logits network and a
    :class:`GumbelSampler`; it returns ``logits`` and a one-hot ``action``, and
    ``action_log_prob`` is filled in once per batch by :func:`one_hot_log_prob` (one log-softmax
    for all steps instead of one per step). Plain path (any other policy): the actor called on a
    TensorDict under ``exploration``, returning its ``out_keys``.
    """

    def __init__(self, policy, steps: int, exploration: ExplorationType, batch_size, device):
        self.policy, self.net = policy, categorical_logits_net(policy)
        self.fast = self.net is not None
        self.exploration, self.batch_size, self.device = exploration, batch_size, device
        self.sample = GumbelSampler(steps, exploration) if self.fast else None

    def __call__(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.fast:
            logits = self.net.module(*(obs[k] for k in self.net.in_keys))
            return {"logits": logits, "action": self.sample(logits)}
        td = TensorDict(dict(obs), batch_size=self.batch_size, device=self.device)
        with set_exploration_type(self.exploration):
            out = self.policy(td)
        return {k: out.get(k) for k in self.policy.out_keys}


def log_prob_and_entropy(
    actor: ProbabilisticActor, tensordict: TensorDictBase, action: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log pi(a|s)`` of ``action`` under ``actor``'s current distribution on ``tensordict``,
    and the distribution's entropy, per sample; the batch is left as it is (its ``logits`` stay
    the collecting policy's). A
    :func:`~pgtorchrl.modules.models.categorical_actor`-shaped policy is scored from its logits directly (the same numbers
    as its distribution's, without building one, :func:`categorical_logits_net`); any other
    actor through ``get_dist`` (TorchRL's ``ProbabilisticActor`` contract). The entropy is a
    one-sample reparametrized Monte Carlo estimate ``-log pi(a~pi)`` where no closed form exists
    (TanhNormal)."""
    net = categorical_logits_net(actor)
    if net is not None:
        log_probs = log_softmax(net.module(*(tensordict.get(k) for k in net.in_keys)))
        return (log_probs * action).sum(-1), -(log_probs.exp() * log_probs).sum(-1)
    dist = actor.get_dist(tensordict.copy())  # a shallow copy takes its writes
    try:
        entropy = dist.entropy()
    except NotImplementedError:
        entropy = -dist.log_prob(dist.rsample())
    return dist.log_prob(action), entropy

"""The policy fast path, fenced: sampling and scoring shortcuts for categorical and diagonal
Gaussian policies, next to the plain TorchRL path each one replaces.

Why it exists: on small fast envs (CartPole, the short corridor, one MuJoCo env per core) much of
a step's time is TensorDict and ``torch.distributions`` bookkeeping, not maths. Two policy shapes
are recognized:

- categorical (:func:`categorical_logits_net`: one module writing ``logits``, then a one-hot
  categorical ``ProbabilisticActor``, as :func:`pgtorchrl.modules.models.categorical_actor`);
- diagonal Gaussian (:func:`gaussian_net`: one module writing ``loc`` and ``scale``, then an
  ``IndependentNormal`` ``ProbabilisticActor``, as
  :func:`pgtorchrl.modules.models.make_gaussian_actor` without ``tanh``).

Such a policy is sampled on plain tensors by :class:`PolicyStep` (a :class:`GumbelSampler`, or
``loc + scale * noise`` with the batch's noise drawn at once), its log-probabilities taken once
per batch (:meth:`PolicyStep.log_prob`), its network called as plain maths where it is an MLP
(:func:`plain_network`); every other actor takes the plain path (the actor
called on a TensorDict under the exploration type). A categorical policy is also scored by
:func:`log_prob_and_entropy` from its logits (the plain path: ``actor.get_dist(td)``), and
:func:`softmax` / :func:`log_softmax` move a short action dim to the front on large batches (a
CPU kernel speed-up, same values).

Everything else calls these functions (:func:`distribution_log_prob_and_entropy` is checked against
TorchRL's distributions through ``tests/test_ppo_loss.py``); ``tests/test_fast_policies.py`` checks that each
shortcut gives what the plain path gives.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from torchrl.envs import ExplorationType, set_exploration_type
from torchrl.modules import IndependentNormal, OneHotCategorical, ProbabilisticActor

from pgtorchrl.modules.models import GaussianHead
from pgtorchrl.modules.operands import operand
from pgtorchrl.modules.plain_mlp import mlp_layers, mlp_output

__all__ = [
    "categorical_logits_net",
    "gaussian_net",
    "policy_mlp",
    "plain_network",
    "softmax",
    "log_softmax",
    "one_hot_log_prob",
    "GumbelSampler",
    "PolicyStep",
    "log_prob_and_entropy",
    "distribution_log_prob_and_entropy",
    "gaussian_log_prob_and_entropy",
    "categorical_log_prob_and_entropy",
]

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def _net_of(policy, distribution_class, keys: list[str]) -> TensorDictModule | None:
    """The network of a two-module ``ProbabilisticActor`` whose network writes ``keys`` and whose
    head reads them into ``distribution_class`` (with no extra distribution arguments), else ``None``."""
    if not isinstance(policy, ProbabilisticActor) or len(policy.module) != 2:
        return None
    net, head = policy.module
    if head.distribution_class is not distribution_class or list(head.in_keys) != keys or head.distribution_kwargs:
        return None
    if not isinstance(net, TensorDictModule) or list(net.out_keys) != keys:
        return None
    return net


def policy_mlp(net: TensorDictModule, trainable: bool = False) -> list | None:
    """The MLP layers (:func:`~pgtorchrl.modules.plain_mlp.mlp_layers`) of a policy network's
    module: a TorchRL ``MLP`` writing logits, or the mean's MLP of a
    :class:`~pgtorchrl.modules.models.GaussianHead` (with ``trainable``, its log-std trainable too);
    else ``None``."""
    module = net.module
    if type(module) is GaussianHead:
        return mlp_layers(module.net, trainable) if not trainable or module.log_std.requires_grad else None
    return mlp_layers(module, trainable)


def plain_network(net: TensorDictModule) -> Any:
    """``net.module`` as plain tensor maths (:mod:`pgtorchrl.modules.plain_mlp`: the same outputs,
    without the module calls) when it reads one key and :func:`policy_mlp` finds its layers, else
    ``net.module`` itself. The parameters are read at every call: updates show."""
    module = net.module
    layers = policy_mlp(net) if len(net.in_keys) == 1 else None
    if layers is None or module._forward_hooks or module._forward_pre_hooks:
        return module
    if type(module) is not GaussianHead:
        return lambda x: mlp_output(layers, x)
    log_std = module.log_std

    def gaussian_head(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = mlp_output(layers, x)
        return loc, log_std.exp().expand_as(loc)  # GaussianHead.forward

    return gaussian_head


def categorical_logits_net(policy) -> TensorDictModule | None:
    """The logits network of a :func:`categorical_actor`-shaped policy (one module writing
    ``logits``, then a one-hot categorical), else ``None``. Code that only needs the logits
    (fast rollouts, the loss) uses it to skip building a distribution object."""
    return _net_of(policy, OneHotCategorical, ["logits"])


def gaussian_net(policy) -> TensorDictModule | None:
    """The ``(loc, scale)`` network of a diagonal Gaussian policy (one module writing ``loc`` and
    ``scale``, then an ``IndependentNormal``), else ``None``."""
    return _net_of(policy, IndependentNormal, ["loc", "scale"])


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
        self._noise = torch.empty(0)  # drawn at the first call (_next == steps)
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


class NormalSampler:
    """Diagonal Gaussian actions ``loc + scale * eps``, ``eps ~ N(0, I)`` drawn for ``steps``
    steps in one call (what ``IndependentNormal.rsample`` draws, one step at a time); not
    exploring, the mean ``loc`` (TorchRL's deterministic action)."""

    def __init__(self, steps: int, exploration: ExplorationType):
        self.steps, self.random = steps, exploration == ExplorationType.RANDOM
        self._noise = torch.empty(0)  # drawn at the first call (_next == steps)
        self._next = steps

    def __call__(self, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        if not self.random:
            return loc
        if self._next == self.steps:
            self._noise = torch.randn((self.steps, *loc.shape), dtype=loc.dtype, device=loc.device)
            self._next = 0
        self._next += 1
        return loc + scale * self._noise[self._next - 1]


class PolicyStep:
    """A policy acting on plain tensors (a ``dict`` of observations) for up to ``steps`` steps.

    Fast path (:attr:`fast`: ``"categorical"`` or ``"normal"``): the policy's network and a
    :class:`GumbelSampler` or :class:`NormalSampler`; it returns ``logits`` (or ``loc`` and
    ``scale``) and ``action``, and :meth:`log_prob` fills in ``action_log_prob`` once per batch.
    Plain path (``fast`` is ``None``: any other policy): the actor called on a TensorDict under
    ``exploration``, returning its ``out_keys`` (its log-probability among them).
    """

    def __init__(self, policy, steps: int, exploration: ExplorationType, batch_size, device):
        self.policy = policy
        self.exploration, self.batch_size, self.device = exploration, batch_size, device
        self.net: Any = None  # the policy's network on the fast path
        self.forward: Any = None  # its module, or that module as plain maths (plain_network)
        self.fast: str | None = None
        self.sample: Any = None  # its sampler (GumbelSampler or NormalSampler)
        for kind, network_of, sampler in (
            ("categorical", categorical_logits_net, GumbelSampler),
            ("normal", gaussian_net, NormalSampler),
        ):
            net = network_of(policy)
            if net is not None:
                self.net, self.fast, self.sample = net, kind, sampler(steps, exploration)
                self.forward = plain_network(net)
                break

    def __call__(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.fast == "categorical":
            logits = self.forward(*(obs[k] for k in self.net.in_keys))
            return {"logits": logits, "action": self.sample(logits)}
        if self.fast == "normal":
            loc, scale = self.forward(*(obs[k] for k in self.net.in_keys))
            return {"loc": loc, "scale": scale, "action": self.sample(loc, scale)}
        td = TensorDict(dict(obs), batch_size=self.batch_size, device=self.device)
        with set_exploration_type(self.exploration):
            out = self.policy(td)
        return {k: out.get(k) for k in self.policy.out_keys}

    def log_prob(self, data: dict[Any, torch.Tensor]) -> torch.Tensor | None:
        """``log pi(action)`` of a batch of the fast path's stacked outputs (one call for all its
        steps), or ``None`` on the plain path (the actor wrote it at each step)."""
        if self.fast == "categorical":
            return one_hot_log_prob(data["logits"], data["action"].argmax(-1, keepdim=True)).squeeze(-1)
        if self.fast == "normal":
            return torch.distributions.Normal(data["loc"], data["scale"]).log_prob(data["action"]).sum(-1)
        return None


def log_prob_and_entropy(
    actor: ProbabilisticActor, tensordict: TensorDictBase, action: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log pi(a|s)`` of ``action`` under ``actor``'s current distribution on ``tensordict``,
    and the distribution's entropy, per sample; the batch is left as it is (its ``logits`` stay
    the collecting policy's). A
    :func:`~pgtorchrl.modules.models.categorical_actor`-shaped policy is scored from its logits directly (the same
    numbers as its distribution's, without building one, :func:`categorical_logits_net`); any other
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


def distribution_log_prob_and_entropy(
    actor: ProbabilisticActor,
    tensordict: TensorDictBase,
    action_key: Any = "action",
    logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log pi(a|s)`` of the batch's action and the entropy per sample for a categorical or
    diagonal Gaussian actor (:func:`categorical_logits_net`, :func:`gaussian_net`), computed from its
    network as ``OneHotCategorical`` (torch's ``Categorical``) and ``IndependentNormal``
    (``Normal.log_prob`` summed over the action) compute them, bit for bit: what pgtorchrl's
    ``ClipPPOLoss`` needs to equal TorchRL's exactly (:func:`log_prob_and_entropy` takes
    ``log_softmax``, equal up to rounding). ``logits``: a categorical actor's logits network's
    output, where the caller computed it already (a trunk shared with the critic)."""
    action = tensordict.get(action_key)
    net = gaussian_net(actor)
    if net is not None:
        return gaussian_log_prob_and_entropy(action, *net.module(*(tensordict.get(k) for k in net.in_keys)))
    net = categorical_logits_net(actor)
    if net is None:
        raise TypeError(f"a categorical or diagonal Gaussian actor is needed, got {type(actor).__name__}")
    if logits is None:
        logits = net.module(*(tensordict.get(k) for k in net.in_keys))
    return categorical_log_prob_and_entropy(action, logits)


@overload
def gaussian_log_prob_and_entropy(
    action: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, entropy: Literal[True] = True
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def gaussian_log_prob_and_entropy(
    action: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]: ...
def gaussian_log_prob_and_entropy(
    action: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, entropy: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``IndependentNormal(loc, scale)``'s log-probability of ``action`` and its entropy, per
    sample, as ``Normal.log_prob`` summed over the action computes them (bit for bit);
    ``entropy=False``: ``None`` for the entropy, not computed."""
    log_scale = scale.log()
    diff, var = action - loc, scale * scale  # x ** 2 is x * x in torch's kernel
    log_prob = (-(diff * diff) / (var + var) - log_scale - operand(_LOG_SQRT_2PI, log_scale)).sum(-1)
    return log_prob, (operand(0.5 + _LOG_SQRT_2PI, log_scale) + log_scale).sum(-1) if entropy else None


def categorical_log_prob_and_entropy(action: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``OneHotCategorical(logits)``'s log-probability of the one-hot ``action`` and its entropy,
    per sample, as torch's ``Categorical`` computes them (bit for bit)."""
    logits = logits - logits.logsumexp(-1, keepdim=True)  # torch's Categorical, as OneHotCategorical scores
    log_prob = logits.gather(-1, action.argmax(-1, keepdim=True)).squeeze(-1)
    entropy = -(logits.clamp(min=torch.finfo(logits.dtype).min) * torch.softmax(logits, -1)).sum(-1)
    return log_prob, entropy

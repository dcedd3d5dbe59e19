"""Actor and critic networks as TorchRL modules (``ProbabilisticActor``, ``ValueOperator``)."""

from __future__ import annotations

from typing import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import InteractionType, TensorDictModule, TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torch import nn
from torchrl.data import Binary, Bounded, Categorical, Composite, MultiOneHot, OneHot, TensorSpec
from torchrl.modules import MLP, IndependentNormal, OneHotCategorical, ProbabilisticActor, TanhNormal, ValueOperator

from pgtorchrl.config.deprecation import renamed_keyword
from pgtorchrl.modules.choices import ACTIVATION_CLASSES, DISTRIBUTIONS
from pgtorchrl.modules.distributions import IndependentBernoulli, MaskedOneHot, MultiOneHotCategorical
from pgtorchrl.modules.encoders import ConvSettings, Encoded, make_encoder
from pgtorchrl.modules.init import POLICY_HEAD_GAIN, VALUE_HEAD_GAIN, orthogonal_init
from pgtorchrl.modules.recurrent import MemorySettings, memory_trunk

__all__ = [
    "ACTIVATIONS",
    "DISTRIBUTIONS",
    "make_discrete_actor",
    "categorical_actor",
    "make_gaussian_actor",
    "make_actor",
    "make_critic",
    "GaussianHead",
    "LOG_PROB_KEY",
    "ACTION_MASK_KEY",
    "policy_kl",
]

#: The activations a spec can name (``activation:``), as classes.
ACTIVATIONS = {name: getattr(nn, cls) for name, cls in ACTIVATION_CLASSES.items()}

# The log-prob key is pinned: tensordict's composite_lp_aggregate() would otherwise choose between
# "sample_log_prob" and "action_log_prob" behind the user's back.
LOG_PROB_KEY = "action_log_prob"
#: Where an env gives its legal actions (sb3-contrib's MaskablePPO and PettingZoo's convention).
ACTION_MASK_KEY = "action_mask"


def _mlp(n_in: int, n_out: int, hidden_sizes: Sequence[int], activation: str, encoder: nn.Module | None = None):
    """The MLP ``n_in -> hidden_sizes -> n_out``; behind ``encoder`` when one is given
    (:class:`~pgtorchrl.modules.encoders.Encoded`: ``n_in`` is then the encoder's output size)."""
    mlp = MLP(
        in_features=n_in, out_features=n_out, num_cells=list(hidden_sizes), activation_class=ACTIVATIONS[activation]
    )
    return mlp if encoder is None else Encoded(encoder, mlp)


@renamed_keyword("observation_key", "in_keys", since="0.1.0", removed_in="0.2.0", convert=lambda key: [key])
def make_discrete_actor(
    n_obs: int,
    n_actions: int,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    spec: TensorSpec | None = None,
    in_keys: Sequence[NestedKey] = ("observation",),
    encoder: nn.Module | None = None,
    mask_key: NestedKey | None = None,
    trunk: TensorDictModuleBase | None = None,
) -> ProbabilisticActor:
    """A categorical policy ``pi(a|s) = softmax(MLP(s))`` over one-hot actions; with an
    ``encoder`` (:mod:`pgtorchrl.modules.encoders`, ``n_obs`` its output size), ``MLP(encoder(s))``;
    with ``mask_key``, renormalized over the legal actions the env marks under that key; with a
    ``trunk`` (a recurrent one, :mod:`pgtorchrl.modules.recurrent`), the MLP reads what it writes.

    >>> actor = make_discrete_actor(4, 2, hidden_sizes=[16])
    >>> actor.out_keys
    ['logits', 'action', 'action_log_prob']
    """
    net = _logits_net(n_obs, n_actions, hidden_sizes, activation, encoder, in_keys, trunk)
    return categorical_actor(net, spec, mask_key=mask_key)


def _after(trunk: TensorDictModuleBase | None, net: TensorDictModule) -> TensorDictModuleBase:
    """``net`` behind ``trunk`` (a recurrent one), or ``net`` alone."""
    return net if trunk is None else TensorDictSequential(trunk, net)


def _logits_net(n_obs, n_out, hidden_sizes, activation, encoder, in_keys, trunk=None) -> TensorDictModuleBase:
    """The module writing ``logits`` from ``in_keys`` (an MLP, behind ``encoder`` if given, or
    behind a recurrent ``trunk`` that writes ``in_keys``)."""
    mlp = TensorDictModule(
        _mlp(n_obs, n_out, hidden_sizes, activation, encoder), in_keys=list(in_keys), out_keys=["logits"]
    )
    return _after(trunk, mlp)


def categorical_actor(
    logits_net: TensorDictModuleBase,
    spec: TensorSpec | None = None,
    distribution_class: type = OneHotCategorical,
    distribution_kwargs: dict | None = None,
    mask_key: NestedKey | None = None,
) -> ProbabilisticActor:
    """A ``ProbabilisticActor`` over a module writing ``logits``: one-hot categorical by default
    (or ``distribution_class``, e.g. :class:`~pgtorchrl.modules.distributions.MultiOneHotCategorical`),
    with ``mask_key`` the :class:`~pgtorchrl.modules.distributions.MaskedOneHot` of the legal actions
    the env gives under that key; samples in training (``InteractionType.RANDOM``), the mode under
    ``ExplorationType.DETERMINISTIC``."""
    in_keys: list | dict = ["logits"]
    if mask_key is not None:
        distribution_class, in_keys = MaskedOneHot, {"logits": "logits", "mask": mask_key}
    return ProbabilisticActor(
        logits_net,
        in_keys=in_keys,
        out_keys=["action"],
        spec=spec,
        distribution_class=distribution_class,
        distribution_kwargs=distribution_kwargs or {},
        return_log_prob=True,
        log_prob_key=LOG_PROB_KEY,
        default_interaction_type=InteractionType.RANDOM,
    )


class GaussianHead(nn.Module):
    """``loc = MLP(s)`` with a state-independent learned log-std, as Spinning Up's VPG.

    Args:
        net: maps observations to the action mean.
        action_dim: the action's size.
        init_log_std: initial log standard deviation (Spinning Up: -0.5).
    """

    def __init__(self, net: nn.Module, action_dim: int, init_log_std: float = -0.5):
        super().__init__()
        self.net = net
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def forward(self, *observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self.net(*observations)  # TorchRL's MLP concatenates several inputs
        return loc, self.log_std.exp().expand_as(loc)


@renamed_keyword("observation_key", "in_keys", since="0.1.0", removed_in="0.2.0", convert=lambda key: [key])
def make_gaussian_actor(
    n_obs: int,
    spec: TensorSpec,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    tanh: bool = False,
    init_log_std: float = -0.5,
    in_keys: Sequence[NestedKey] = ("observation",),
    encoder: nn.Module | None = None,
    trunk: TensorDictModuleBase | None = None,
) -> ProbabilisticActor:
    """A Gaussian policy for ``Box`` actions (diagonal, state-independent log-std, as Spinning
    Up); ``tanh=True`` squashes it into the spec's bounds (TanhNormal). The deterministic
    action is the mean (squashed for tanh). With an ``encoder`` (``n_obs`` its output size), the
    mean is ``MLP(encoder(s))``; with a recurrent ``trunk``, the MLP reads what it writes.

    >>> from torchrl.data import Bounded
    >>> actor = make_gaussian_actor(3, Bounded(-2.0, 2.0, shape=(1,)), hidden_sizes=[8])
    >>> actor.out_keys
    ['loc', 'scale', 'action', 'action_log_prob']
    """
    action_dim = spec.shape[-1]
    head = GaussianHead(_mlp(n_obs, action_dim, hidden_sizes, activation, encoder), action_dim, init_log_std)
    net = _after(trunk, TensorDictModule(head, in_keys=list(in_keys), out_keys=["loc", "scale"]))
    if tanh:
        if not isinstance(spec, Bounded):
            raise ValueError("distribution 'tanh_normal' needs a bounded (Box) action spec; use 'normal'.")
        # one action's bounds (a batched env's spec repeats them per env), broadcast over any batch
        low, high = (bound.reshape(-1, action_dim)[0] for bound in (spec.space.low, spec.space.high))
        dist_class, dist_kwargs = TanhNormal, {"low": low, "high": high}
    else:
        dist_class, dist_kwargs = IndependentNormal, {}  # a diagonal Gaussian: log-prob summed over dims
    return ProbabilisticActor(
        net,
        in_keys=["loc", "scale"],
        out_keys=["action"],
        spec=spec,
        distribution_class=dist_class,
        distribution_kwargs=dist_kwargs,
        return_log_prob=True,
        log_prob_key=LOG_PROB_KEY,
        default_interaction_type=InteractionType.RANDOM,
    )


def make_actor(
    observation_spec: TensorSpec,
    action_spec: TensorSpec,
    *,
    in_keys: Sequence[NestedKey] = ("observation",),
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    distribution: str = "auto",
    init_log_std: float = -0.5,
    conv: ConvSettings | None = None,
    mask_key: NestedKey | None = ACTION_MASK_KEY,
    memory: MemorySettings | None = None,
    ortho_init: bool = False,
) -> ProbabilisticActor:
    """The policy for an env's specs, its MLP behind the encoders of its observation keys
    (:func:`pgtorchrl.modules.encoders.make_encoder`): categorical for ``Discrete`` actions (masked
    when the env's observations have ``mask_key``), independent categoricals for ``MultiDiscrete``,
    independent Bernoullis for ``MultiBinary`` (:mod:`pgtorchrl.modules.distributions`), Gaussian
    for ``Box``.

    Args:
        observation_spec: the env's ``observation_spec`` (a ``Composite``, read at ``in_keys``),
            or the spec of the one key in ``in_keys`` (see :func:`~pgtorchrl.modules.encoders.make_encoder`).
        action_spec: the env's action spec (one-hot/categorical or bounded continuous).
        in_keys: the observation key(s) the network reads (several are concatenated).
        hidden_sizes: hidden layer widths of the MLP.
        activation: one of :data:`ACTIVATIONS`.
        distribution: one of :data:`DISTRIBUTIONS`.
        init_log_std: initial log-std of Gaussian policies.
        conv: the convolutions of image keys (default: by frame size, see :mod:`~pgtorchrl.modules.encoders`).
        mask_key: the observation key of the legal-action mask (MaskablePPO's and PettingZoo's
            ``action_mask``), used when the observation spec has it; ``None`` ignores any mask.
        memory: an LSTM or GRU between the encoders and the MLP (:mod:`pgtorchrl.modules.recurrent`).
        ortho_init: CleanRL's and SB3's orthogonal initialization, the head's gain 0.01
            (:func:`pgtorchrl.modules.init.orthogonal_init`); ``False``: PyTorch's default.

    >>> from torchrl.data import Composite, OneHot, Unbounded
    >>> make_actor(Composite(obs=Unbounded(4)), OneHot(2), in_keys=["obs"], hidden_sizes=[8]).in_keys
    ['obs']
    """
    settings = (hidden_sizes, activation, distribution, init_log_std, conv, mask_key, memory)
    actor = _policy(observation_spec, action_spec, list(in_keys), *settings)
    return orthogonal_init(actor, POLICY_HEAD_GAIN) if ortho_init else actor


def _policy(
    observation_spec,
    action_spec,
    observed,
    hidden_sizes,
    activation,
    distribution,
    init_log_std,
    conv,
    mask_key,
    memory,
) -> ProbabilisticActor:
    """:func:`make_actor`'s policy, with PyTorch's default initialization."""
    encoder, n_obs, in_keys, trunk = _encoded(observation_spec, observed, conv, memory)
    discrete = isinstance(action_spec, (OneHot, Categorical))
    if distribution == "auto":
        distribution = "bernoulli" if isinstance(action_spec, Binary) else "categorical" if discrete else "normal"
    if distribution == "bernoulli" and not isinstance(action_spec, Binary):
        raise ValueError(
            f"distribution 'bernoulli' needs MultiBinary actions; the env's action spec is {type(action_spec).__name__}"
        )
    if distribution == "bernoulli":
        net = _logits_net(n_obs, action_spec.shape[-1], hidden_sizes, activation, encoder, in_keys, trunk)
        return categorical_actor(net, action_spec, IndependentBernoulli)
    if distribution == "categorical":
        if not discrete or isinstance(action_spec, Binary):
            instead = "'bernoulli'" if discrete else "'normal' or 'tanh_normal'"
            raise ValueError(
                f"distribution 'categorical' needs discrete actions but the env's action spec is "
                f"{type(action_spec).__name__}; use {instead}."
            )
        if not isinstance(action_spec, OneHot):
            raise ValueError("discrete actions must be one-hot (GymEnv's default categorical_action_encoding=False).")
        if isinstance(action_spec, MultiOneHot):  # MultiDiscrete: one categorical per component
            nvec = [int(n) for n in action_spec.nvec]
            net = _logits_net(n_obs, sum(nvec), hidden_sizes, activation, encoder, in_keys, trunk)
            return categorical_actor(net, action_spec, MultiOneHotCategorical, {"nvec": nvec})
        masked = (
            mask_key is not None and isinstance(observation_spec, Composite) and mask_key in observation_spec.keys(True)
        )
        return make_discrete_actor(
            n_obs,
            action_spec.shape[-1],
            hidden_sizes,
            activation,
            spec=action_spec,
            in_keys=in_keys,
            encoder=encoder,
            mask_key=mask_key if masked else None,
            trunk=trunk,
        )
    if discrete:
        raise ValueError(
            f"distribution {distribution!r} needs a Box action space but the env's actions are "
            "discrete; use 'categorical'."
        )
    return make_gaussian_actor(
        n_obs,
        action_spec,
        hidden_sizes,
        activation,
        tanh=distribution == "tanh_normal",
        init_log_std=init_log_std,
        in_keys=in_keys,
        encoder=encoder,
        trunk=trunk,
    )


def _encoded(observation_spec, in_keys: list, conv, memory: MemorySettings | None):
    """The head's input: ``(encoder, n_features, head_in_keys, trunk)``. Feed-forward: the
    encoders of ``in_keys`` (:func:`~pgtorchrl.modules.encoders.make_encoder`) in front of the
    MLP; with ``memory``: no encoder in the head, which reads the recurrent trunk's features
    (the encoders sit in the trunk, before the RNN)."""
    encoder, n_obs = make_encoder(observation_spec, in_keys, conv)
    if memory is None:
        return encoder, n_obs, in_keys, None
    trunk = memory_trunk(memory, encoder, n_obs, in_keys)
    return None, memory.hidden_size, [memory.features_key], trunk


def make_critic(
    observation_spec: TensorSpec,
    *,
    in_keys: Sequence[NestedKey] = ("observation",),
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    conv: ConvSettings | None = None,
    memory: MemorySettings | None = None,
    ortho_init: bool = False,
) -> TensorDictModuleBase:
    """A state-value network ``V(s) = MLP(s)`` writing ``state_value``, reading ``in_keys``
    (several are concatenated, each behind its encoder: see
    :func:`~pgtorchrl.modules.encoders.make_encoder` for ``observation_spec`` and ``conv``); with
    ``memory``, a ``TensorDictSequential`` of its recurrent trunk (keys prefixed ``critic_``:
    :mod:`pgtorchrl.modules.recurrent`) and the ``ValueOperator`` head; with ``ortho_init``,
    CleanRL's and SB3's orthogonal initialization, the head's gain 1
    (:func:`pgtorchrl.modules.init.orthogonal_init`).

    >>> from torchrl.data import Unbounded
    >>> make_critic(Unbounded(4), hidden_sizes=[8]).out_keys
    ['state_value']
    """
    encoder, n_obs, head_keys, trunk = _encoded(observation_spec, list(in_keys), conv, memory)
    critic = _after(trunk, ValueOperator(_mlp(n_obs, 1, hidden_sizes, activation, encoder), in_keys=head_keys))
    return orthogonal_init(critic, VALUE_HEAD_GAIN) if ortho_init else critic


def policy_kl(actor: ProbabilisticActor, tensordict: TensorDictBase, old) -> torch.Tensor:
    r"""Per sample :math:`\mathrm{KL}(\pi_{old}(\cdot|s) \,\|\, \pi_\theta(\cdot|s))`, with a graph
    through ``actor``'s weights. ``old`` is what :func:`policy_kl` needs of the collecting
    policy: ``actor.get_dist(tensordict)`` taken before the update under ``torch.no_grad()``
    (its parameters are constants). A tanh-squashed Gaussian is compared by its Gaussian:
    the KL is invariant under the (invertible) squashing."""
    new = actor.get_dist(tensordict.copy())
    old_base, new_base = getattr(old, "base_dist", old), getattr(new, "base_dist", new)
    return torch.distributions.kl_divergence(old_base, new_base)

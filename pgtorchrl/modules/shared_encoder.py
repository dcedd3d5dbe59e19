"""A shared actor-critic trunk (``critic: {share_encoder: true}``): the critic reads the actor's
observation encoder (its CNN, one-hot and per-key encoders: :mod:`pgtorchrl.modules.encoders`)
instead of its own, as CleanRL's Atari agent shares its Nature-CNN between the policy and the
value heads (``ppo_atari.py``).

The trunk's parameters belong to the actor (``actor.parameters()`` lists them) and are also in
``critic.parameters()`` (the same tensors). What steps them (``pgtorchrl.trainers.trainer``):

- a gradient update (``adam``, ``sgd``, ``rmsprop``): one backward pass of the sum of the
  loss's terms gives the trunk the policy's and the value's gradients together; the actor's
  optimizer (``optim``) steps the actor and the trunk, the critic's (``critic_optim``) only the
  critic's own parameters (:func:`own_parameters`: its head), so no parameter is stepped twice;
  ``train.max_grad_norm`` clips the norm of all of them together (one model, as CleanRL);
- extra critic steps (``train.value_steps > 1``) and a trust-region update (``npg``, ``trpo``):
  the critic's optimizer steps its head only; the trunk moves with the policy's step (the natural
  gradient's Fisher matrix is over every actor parameter, the trunk's included).
"""

from __future__ import annotations

from torch import nn

from pgtorchrl.modules.encoders import Encoded

__all__ = ["share_encoder", "own_parameters", "encoded_module", "shared_trunk"]


def encoded_module(network: nn.Module, role: str) -> Encoded:
    """The one :class:`~pgtorchrl.modules.encoders.Encoded` network (an MLP head behind an
    observation encoder) inside an actor or critic; ``role`` names it in the error."""
    found = [m for m in network.modules() if isinstance(m, Encoded)]
    if len(found) != 1:
        raise ValueError(
            f"critic.share_encoder: the {role} has no observation encoder to share (its inputs are flat "
            "float vectors, read by the MLP itself): set share_encoder: false"
            if not found
            else f"critic.share_encoder: the {role} has {len(found)} observation encoders; one is shared"
        )
    return found[0]


def share_encoder(actor: nn.Module, critic: nn.Module) -> list[nn.Parameter]:
    """Makes ``critic`` read ``actor``'s observation encoder instead of its own (which is
    dropped); returns the shared parameters. Both must encode the same ``in_keys`` with encoders of
    one structure (the same sections' convolutions), and the encoder must have parameters.

    >>> import torch
    >>> from torchrl.data import Composite, OneHot, Unbounded
    >>> from pgtorchrl.modules.models import make_actor, make_critic
    >>> spec = Composite(pixels=Unbounded((3, 10, 10)), shape=())
    >>> actor = make_actor(spec, OneHot(4), in_keys=["pixels"], hidden_sizes=[])
    >>> critic = make_critic(spec, in_keys=["pixels"], hidden_sizes=[])
    >>> shared = share_encoder(actor, critic)
    >>> encoded_module(critic, "critic").encoder is encoded_module(actor, "actor").encoder
    True
    """
    actor_net, critic_net = encoded_module(actor, "actor"), encoded_module(critic, "critic")
    actor_keys = _network_in_keys(actor, actor_net)
    critic_keys = _network_in_keys(critic, critic_net)
    if actor_keys != critic_keys:
        raise ValueError(
            f"critic.share_encoder: the actor's network reads {actor_keys} and the critic's {critic_keys}: "
            "give both the same in_keys"
        )
    ours = {k: tuple(v.shape) for k, v in actor_net.encoder.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in critic_net.encoder.state_dict().items()}
    if ours != theirs:
        raise ValueError(
            "critic.share_encoder: the critic's encoder differs from the actor's (its convolutions or "
            "out_features): give the critic section the actor's, or leave them at their defaults in both"
        )
    shared = list(actor_net.encoder.parameters())
    if not shared:
        raise ValueError(
            f"critic.share_encoder: the encoder of {actor_keys} has no parameters (one-hot or cast "
            "inputs): there is nothing to share; set share_encoder: false"
        )
    critic_net.encoder = actor_net.encoder
    return shared


def _network_in_keys(network: nn.Module, encoded: Encoded) -> list:
    """The ``in_keys`` of the TensorDictModule that calls ``encoded`` (its observation keys)."""
    from tensordict.nn import TensorDictModule

    callers = [  # pre-order: the innermost caller last (an actor's sequence also reads its mask)
        m
        for m in network.modules()
        if isinstance(m, TensorDictModule) and any(x is encoded for x in m.module.modules())
    ]
    if not callers:
        raise ValueError("critic.share_encoder: no TensorDictModule calls the network's encoder")
    return [k if isinstance(k, str) else tuple(k) for k in callers[-1].in_keys]


def own_parameters(module: nn.Module, other: nn.Module) -> list[nn.Parameter]:
    """``module``'s parameters that are not ``other``'s (a critic's head, without the trunk it
    shares with the actor), in ``module.parameters()`` order."""
    theirs = {id(p) for p in other.parameters()}
    return [p for p in module.parameters() if id(p) not in theirs]


def shared_trunk(actor_net, critic) -> tuple[nn.Module, nn.Module, nn.Module] | None:
    """``(encoder, actor_head, critic_head)`` where an actor's network (a ``TensorDictModule``
    over an :class:`~pgtorchrl.modules.encoders.Encoded`, e.g. its logits network) and a critic
    (one ``TensorDictModule`` over an ``Encoded``) read the same ``in_keys`` through one encoder
    object (:func:`share_encoder`), else ``None``: then the encoder's features can be computed
    once for both heads (``pgtorchrl.objectives.ppo``: what one minibatch step costs twice
    otherwise, a CNN's forward and backward passes)."""
    actor_module, critic_module = getattr(actor_net, "module", None), getattr(critic, "module", None)
    if not isinstance(actor_module, Encoded) or not isinstance(critic_module, Encoded):
        return None
    if actor_module.encoder is not critic_module.encoder or list(actor_net.in_keys) != list(critic.in_keys):
        return None
    return actor_module.encoder, actor_module.head, critic_module.head

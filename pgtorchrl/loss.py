"""pgtorchrl's REINFORCE loss: the score-function policy gradient, with or without a critic."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import ProbabilisticTensorDictSequential, TensorDictModule
from tensordict.utils import NestedKey
from torchrl.objectives import LossModule
from torchrl.objectives.utils import distance_loss

from pgtorchrl.models import categorical_logits_net, log_softmax

__all__ = ["ReinforceLoss"]


class ReinforceLoss(LossModule):
    r"""REINFORCE / vanilla policy-gradient loss whose gradient is the sample policy gradient.

    .. math::

        \mathcal{L}_{actor} = -\frac{1}{N} \sum_{i} \log \pi_\theta(a_i \mid s_i)\, \hat A_i,
        \qquad
        \nabla_\theta \mathcal{L}_{actor} = -\hat g,\quad
        \hat g = \frac{1}{N}\sum_i \nabla_\theta \log \pi_\theta(a_i \mid s_i)\, \hat A_i

    where :math:`\hat A` is whatever weight the advantage module wrote (reward-to-go
    :math:`G_t`, :math:`G_t - V(s_t)`, GAE). Minimizing it ascends the policy gradient of the
    slides ("Plugging grad-log-prob into the gradient update"), Williams (1992), Sutton & Barto
    (2018) Sec. 13.3, and Spinning Up's VPG policy loss ``-(logp * adv).mean()``.
    With a critic, ``loss_critic`` regresses :math:`V(s)` on ``value_target``
    (:math:`w \leftarrow w + \alpha_w \delta \nabla \hat v`, Sec. 13.4). An optional entropy
    bonus adds ``loss_entropy = -entropy_coef * H[pi]``.

    Unlike :class:`torchrl.objectives.ReinforceLoss`, the critic is optional (critic-free
    REINFORCE) and the advantage must already be in the batch (see :mod:`pgtorchrl.advantage`);
    the loss never recomputes it.

    Args:
        actor_network: a probabilistic actor exposing ``get_dist``.
        critic_network: a module writing ``state_value``, or ``None`` for critic-free REINFORCE.

    Keyword Args:
        entropy_coef: weight of the entropy bonus (``0`` disables ``loss_entropy``).
        critic_coef: weight of ``loss_critic`` in the sum of losses.
        loss_critic_type: ``"l2"`` (default, Spinning Up), ``"l1"`` or ``"smooth_l1"``.
        reduction: ``"mean"`` over the batch's steps (default), or ``"sum"``: the per-episode
            sum :math:`\sum_t`, so that plain SGD with step size :math:`\alpha` on a batch of
            one episode per run is exactly the textbook update
            :math:`\theta \leftarrow \theta + \alpha \sum_t \hat A_t \nabla \ln \pi(A_t|S_t)`.

    Outputs: ``loss_actor``, ``loss_critic`` (with a critic), ``loss_entropy`` (when
    ``entropy_coef > 0``) and ``entropy`` (the mean policy entropy, not a loss). A padded
    whole-episode batch is reduced over its ``("collector", "mask")`` steps only (TorchRL's
    loss-mask handling), so per-env parameters keep their batch layout.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from pgtorchrl.models import make_discrete_actor
        >>> actor = make_discrete_actor(n_obs=3, n_actions=2, hidden_sizes=[8])
        >>> loss = ReinforceLoss(actor)
        >>> batch = TensorDict({"observation": torch.randn(5, 3),
        ...     "action": torch.nn.functional.one_hot(torch.randint(2, (5,)), 2),
        ...     "advantage": torch.randn(5, 1)}, [5])
        >>> out = loss(batch)
        >>> sorted(out.keys())
        ['entropy', 'loss_actor']
        >>> out["loss_actor"].backward()
    """

    @dataclass
    class _AcceptedKeys:
        """Tensordict keys read by the loss; change them with :meth:`set_keys`.

        Attributes:
            advantage: the policy-gradient weight. Defaults to ``"advantage"``.
            value_target: the critic's regression target. Defaults to ``"value_target"``.
            value: the critic's output. Defaults to ``"state_value"``.
            action: the action taken, scored under the current policy. Defaults to ``"action"``.
        """

        advantage: NestedKey = "advantage"
        value_target: NestedKey = "value_target"
        value: NestedKey = "state_value"
        action: NestedKey = "action"

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys

    def __init__(
        self,
        actor_network: ProbabilisticTensorDictSequential,
        critic_network: TensorDictModule | None = None,
        *,
        entropy_coef: float = 0.0,
        critic_coef: float = 1.0,
        loss_critic_type: str = "l2",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not hasattr(actor_network, "get_dist"):
            raise TypeError(
                f"actor_network must be a probabilistic actor with get_dist() (e.g. "
                f"torchrl.modules.ProbabilisticActor), got {type(actor_network).__name__}."
            )
        if loss_critic_type not in ("l1", "l2", "smooth_l1"):
            raise ValueError(f"loss_critic_type={loss_critic_type!r}: use 'l2', 'l1' or 'smooth_l1'.")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction={reduction!r}: use 'mean' or 'sum'.")
        self.reduction = reduction
        self.actor_network = actor_network
        self.critic_network = critic_network
        # a plain reference, not a second registration of the actor's submodule
        self.__dict__["_logits_net"] = categorical_logits_net(actor_network)
        self.entropy_coef = float(entropy_coef)
        self.critic_coef = float(critic_coef)
        self.loss_critic_type = loss_critic_type

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass  # the advantage is computed outside the loss: no estimator to forward keys to

    @property
    def in_keys(self) -> list[NestedKey]:
        keys = [self.tensor_keys.action, self.tensor_keys.advantage, *self.actor_network.in_keys]
        if self.critic_network is not None:
            keys += [self.tensor_keys.value_target, *self.critic_network.in_keys]
        return list(dict.fromkeys(keys))

    @property
    def out_keys(self) -> list[str]:
        keys = ["loss_actor", "entropy"]
        if self.critic_network is not None:
            keys.append("loss_critic")
        if self.entropy_coef > 0:
            keys.append("loss_entropy")
        return keys

    def _get(self, tensordict: TensorDictBase, key: NestedKey, why: str) -> torch.Tensor:
        value = tensordict.get(key, None)
        if value is None:
            raise KeyError(
                f"ReinforceLoss needs {key!r} ({why}) but the batch has only "
                f"{sorted(map(str, tensordict.keys(True, True)))}; run an advantage module "
                f"(pgtorchrl.advantage) first or rename with loss.set_keys(...)."
            )
        return value

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        advantage = self._get(tensordict, self.tensor_keys.advantage, "the policy-gradient weight")
        action = self._get(tensordict, self.tensor_keys.action, "the action taken")
        log_prob, entropy = self.log_prob_and_entropy(tensordict, action)
        losses = self._losses(log_prob, entropy, advantage, lambda x, **kw: self._reduce_loss(x, tensordict, **kw))
        if self.critic_network is not None:
            losses["loss_critic"] = self.loss_critic(tensordict)
        return TensorDict(losses, batch_size=[])

    def step_losses(
        self,
        logits: torch.Tensor,
        action: torch.Tensor,
        advantage: torch.Tensor,
        mask: torch.Tensor | None,
        value: torch.Tensor | None = None,
        value_target: torch.Tensor | None = None,
        action_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """:meth:`forward` on plain tensors, for a categorical actor: the same losses from the
        actor's ``logits``, the one-hot ``action``, the ``advantage`` and (with a critic) its
        ``value`` and ``value_target``, reduced over the ``mask`` steps. Per-step updates run
        it once per time step of a batch, where TensorDict bookkeeping would cost more than
        the maths; ``entropy`` is left out unless ``entropy_coef > 0`` needs it.
        ``action_index`` (``action.argmax(-1, keepdim=True)``) saves recomputing it on repeated calls."""
        log_probs = log_softmax(logits)
        if action_index is None:
            action_index = action.argmax(-1, keepdim=True)
        log_prob = log_probs.gather(-1, action_index)  # the one-hot action's entry
        # the entropy only when it is a loss term: as a metric, once per batch is enough
        entropy = -(log_probs.exp() * log_probs).sum(-1) if self.entropy_coef > 0 else None

        def reduce(x, **kw):
            return self._reduce_loss(x, mask=mask, **kw)

        actor_reduce = reduce
        if mask is not None and self.reduction == "sum" and entropy is None:
            # zero weights off the mask give the same masked sum with one autograd node fewer
            advantage = torch.where(mask.unsqueeze(-1), advantage, 0.0)
            actor_reduce = self._reduce_loss
        losses = self._losses(log_prob, entropy, advantage, actor_reduce)
        if self.critic_network is not None:
            losses["loss_critic"] = self._critic_loss(value, value_target, reduce)
        return losses

    def _losses(self, log_prob, entropy, advantage, reduce) -> dict[str, torch.Tensor]:
        """The actor's terms; ``reduce`` is the batch reduction (masked where the batch is padded)."""
        if log_prob.shape == advantage.shape[:-1]:
            log_prob = log_prob.unsqueeze(-1)
        losses = {"loss_actor": -reduce(log_prob * advantage.detach())}
        if entropy is None:
            return losses
        losses["entropy"] = reduce(entropy, reduction="mean").detach()
        if self.entropy_coef > 0:
            losses["loss_entropy"] = -self.entropy_coef * reduce(entropy)
        return losses

    def log_prob_and_entropy(self, tensordict: TensorDictBase, action: torch.Tensor | None = None):
        """``log pi(a|s)`` of the batch's action (or ``action``) under the current policy, and
        the policy's entropy, per sample. The batch is left as it is: its ``logits`` stay the
        collecting policy's (what ``rollout/`` metrics read). A one-hot categorical policy is
        scored from its logits directly (the same numbers as its distribution's, without
        building one)."""
        if action is None:
            action = self._get(tensordict, self.tensor_keys.action, "the action taken")
        net = self._logits_net
        if net is not None:
            log_probs = log_softmax(net.module(*(tensordict.get(k) for k in net.in_keys)))
            return (log_probs * action).sum(-1), -(log_probs.exp() * log_probs).sum(-1)
        dist = self.actor_network.get_dist(tensordict.copy())  # a shallow copy takes its writes
        return dist.log_prob(action), self._entropy(dist)

    @staticmethod
    def _entropy(dist) -> torch.Tensor:
        """The policy's entropy per sample; a one-sample Monte Carlo estimate ``-log pi(a~pi)``
        (reparametrized, so it has a gradient) where no closed form exists (TanhNormal)."""
        try:
            return dist.entropy()
        except NotImplementedError:
            return -dist.log_prob(dist.rsample())

    def loss_critic(self, tensordict: TensorDictBase) -> torch.Tensor:
        """``critic_coef * distance(V(s), value_target)``, reduced over the batch like the actor loss."""
        if self.critic_network is None:
            raise RuntimeError("this ReinforceLoss has no critic: pass critic_network=... to train one.")
        target = self._get(tensordict, self.tensor_keys.value_target, "the critic's regression target")
        value = self.critic_network(
            tensordict.select(*self.critic_network.in_keys, strict=False)
        ).get(self.tensor_keys.value)
        return self._critic_loss(value, target, lambda x, **kw: self._reduce_loss(x, tensordict, **kw))

    def _critic_loss(self, value: torch.Tensor, value_target: torch.Tensor, reduce) -> torch.Tensor:
        return self.critic_coef * reduce(distance_loss(value_target.detach(), value, self.loss_critic_type))

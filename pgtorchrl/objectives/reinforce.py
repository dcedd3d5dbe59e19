"""pgtorchrl's REINFORCE loss: the score-function policy gradient, with or without a critic."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from tensordict.nn import ProbabilisticTensorDictSequential, TensorDictModule
from tensordict.utils import NestedKey
from torchrl.objectives import LossModule
from torchrl.objectives.utils import ValueEstimators, dispatch_value_estimator, distance_loss

from pgtorchrl.modules.fast_policies import log_prob_and_entropy, log_softmax
from pgtorchrl.objectives.choices import CRITIC_LOSS_TYPES, CriticLossType

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
    bonus adds ``loss_entropy = -entropy_coeff * H[pi]``.

    It honours TorchRL's ``LossModule`` contract as :class:`torchrl.objectives.ReinforceLoss`
    and ``A2CLoss`` do (``set_keys``, ``select_out_keys``, ``make_value_estimator``,
    ``value_estimator``, functional parameters, ``reduction="none"``), with TorchRL's keyword
    spellings. Unlike TorchRL's ``ReinforceLoss``, the critic is optional (critic-free
    REINFORCE), there is an entropy term, and the critic output is ``loss_critic`` (as
    ``A2CLoss``). The advantage is read from the batch when an advantage module (see
    :mod:`pgtorchrl.objectives.value.advantages`) wrote it; otherwise, as TorchRL's losses do, the loss's own
    :attr:`value_estimator` (GAE by default, :meth:`make_value_estimator`) computes it, which
    needs a critic.

    Args:
        actor_network: a probabilistic actor exposing ``get_dist``.
        critic_network: a module writing ``state_value``, or ``None`` for critic-free REINFORCE.

    Keyword Args:
        entropy_coeff: weight of the entropy bonus (``0`` disables ``loss_entropy``; TorchRL's spelling).
        critic_coeff: weight of ``loss_critic`` in the sum of losses.
        loss_critic_type: ``"l2"`` (default, Spinning Up), ``"l1"`` or ``"smooth_l1"``.
        reduction: ``"mean"`` over the batch's steps (default); ``"sum"``: the per-episode
            sum :math:`\sum_t`, so that plain SGD with step size :math:`\alpha` on a batch of
            one episode per run is exactly the textbook update
            :math:`\theta \leftarrow \theta + \alpha \sum_t \hat A_t \nabla \ln \pi(A_t|S_t)`;
            ``"none"``: per-step losses in the batch's shape (padding zeroed).
        functional: as in TorchRL's losses: the networks' parameters are also held as
            ``actor_network_params`` / ``critic_network_params`` (the same tensors, so an
            optimizer over the actor's parameters trains the loss) and swapped in at every call.

    Outputs: ``loss_actor``, ``loss_critic`` (with a critic), ``loss_entropy`` (when
    ``entropy_coeff > 0``) and ``entropy`` (the mean policy entropy, not a loss). A padded
    whole-episode batch is reduced over its ``("collector", "mask")`` steps only (TorchRL's
    loss-mask handling), so per-env parameters keep their batch layout.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from pgtorchrl.modules.models import make_discrete_actor
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
            reward, done, terminated: read under ``"next"`` by the loss's own value estimator.
        """

        advantage: NestedKey = "advantage"
        value_target: NestedKey = "value_target"
        value: NestedKey = "state_value"
        action: NestedKey = "action"
        reward: NestedKey = "reward"
        done: NestedKey = "done"
        terminated: NestedKey = "terminated"

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys
    default_value_estimator = ValueEstimators.GAE
    SUPPORTED_VALUE_ESTIMATORS = (
        ValueEstimators.TD0,
        ValueEstimators.TD1,
        ValueEstimators.TDLambda,
        ValueEstimators.GAE,
    )

    actor_network: TensorDictModule
    critic_network: TensorDictModule | None
    actor_network_params: TensorDictParams
    critic_network_params: TensorDictParams | None
    target_actor_network_params: TensorDictParams | None
    target_critic_network_params: TensorDictParams | None

    def __init__(
        self,
        actor_network: ProbabilisticTensorDictSequential,
        critic_network: TensorDictModule | None = None,
        *,
        entropy_coeff: float = 0.0,
        critic_coeff: float = 1.0,
        loss_critic_type: CriticLossType = "l2",
        reduction: str = "mean",
        functional: bool = True,
    ) -> None:
        self._functional = functional
        super().__init__()
        if not hasattr(actor_network, "get_dist"):
            raise TypeError(
                f"actor_network must be a probabilistic actor with get_dist() (e.g. "
                f"torchrl.modules.ProbabilisticActor), got {type(actor_network).__name__}."
            )
        if loss_critic_type not in CRITIC_LOSS_TYPES:
            raise ValueError(
                f"loss_critic_type={loss_critic_type!r}: use one of {', '.join(map(repr, CRITIC_LOSS_TYPES))}."
            )
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction={reduction!r}: use 'mean', 'sum' or 'none'.")
        self.reduction = reduction
        for name, net in (("actor_network", actor_network), ("critic_network", critic_network)):
            if net is None:
                setattr(self, name, None)
                self.__dict__[name + "_params"] = None
            elif functional:
                self.convert_to_functional(net, name, create_target_params=False)
            else:
                setattr(self, name, net)
        self.target_actor_network_params = self.target_critic_network_params = None
        self.entropy_coeff = float(entropy_coeff)
        self.critic_coeff = float(critic_coeff)
        self.loss_critic_type = loss_critic_type
        self._out_keys: list[str] | None = None

    @property
    def functional(self) -> bool:
        return self._functional

    def _params(self, name: str):
        """The context that swaps the loss's functional parameters into network ``name``."""
        if not self.functional or getattr(self, name) is None:
            return contextlib.nullcontext()
        return getattr(self, name + "_params").to_module(getattr(self, name), preserve_module_state=False)

    def make_value_estimator(self, value_type: ValueEstimators | None = None, **hyperparams):
        """Builds the loss's own value estimator, as TorchRL's losses do (``GAE`` by default;
        ``TD0``, ``TD1``, ``TDLambda``; or an estimator class or instance). It computes the
        advantage of a batch that reaches the loss without one; it needs a critic."""
        if self.critic_network is None:
            raise ValueError(
                "this ReinforceLoss has no critic, and TorchRL's value estimators need a value network: "
                "pass critic_network=..., or write the advantage with pgtorchrl.objectives.value.advantages.RewardToGo"
            )
        value_type, hp = self._prepare_value_estimator_kwargs(value_type, **hyperparams)
        if value_type is None:  # an estimator class or instance: handled by LossModule
            return self
        hp.setdefault("device", self._default_device)
        dispatch_value_estimator(
            self,
            value_type,
            supported=self.SUPPORTED_VALUE_ESTIMATORS,
            tensor_keys={
                k: getattr(self.tensor_keys, k)
                for k in ("advantage", "value", "value_target", "reward", "done", "terminated")
            },
            **hp,
        )
        return self

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        if self._value_estimator is not None:
            self._value_estimator.set_keys(
                **{
                    k: getattr(self.tensor_keys, k)
                    for k in ("advantage", "value", "value_target", "reward", "done", "terminated")
                }
            )

    @property
    def in_keys(self) -> list[NestedKey]:
        keys = [self.tensor_keys.action, self.tensor_keys.advantage, *self.actor_network.in_keys]
        if self.critic_network is not None:
            keys += [self.tensor_keys.value_target, *self.critic_network.in_keys]
        return list(dict.fromkeys(keys))

    @property
    def out_keys(self) -> list[str]:
        if self._out_keys is not None:
            return self._out_keys
        keys = ["loss_actor", "entropy"]
        if self.critic_network is not None:
            keys.append("loss_critic")
        if self.entropy_coeff > 0:
            keys.append("loss_entropy")
        return keys

    @out_keys.setter
    def out_keys(self, values: list[str]) -> None:
        self._out_keys = values  # select_out_keys (TensorDictModuleBase) narrows the outputs

    def _get(self, tensordict: TensorDictBase, key: NestedKey, why: str) -> torch.Tensor:
        value = tensordict.get(key, None)
        if value is None:
            raise KeyError(
                f"ReinforceLoss needs {key!r} ({why}) but the batch has only "
                f"{sorted(map(str, tensordict.keys(True, True)))}; run an advantage module "
                f"(pgtorchrl.objectives.value.advantages) first or rename with loss.set_keys(...)."
            )
        return value

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if self.tensor_keys.advantage not in tensordict.keys(True) and self.critic_network is not None:
            with torch.no_grad(), self._params("critic_network"):
                self.value_estimator(tensordict)  # writes advantage and value_target, as TorchRL's losses
        advantage = self._get(tensordict, self.tensor_keys.advantage, "the policy-gradient weight")
        action = self._get(tensordict, self.tensor_keys.action, "the action taken")
        with self._params("actor_network"):
            log_prob, entropy = log_prob_and_entropy(self.actor_network, tensordict, action)
        losses = self._losses(log_prob, entropy, advantage, lambda x, **kw: self._reduce_loss(x, tensordict, **kw))
        if self.critic_network is not None:
            loss_critic, _ = self.loss_critic(tensordict)
            losses["loss_critic"] = self._reduce_loss(loss_critic, tensordict)
        if self.reduction == "none":  # per-step losses in the batch's shape, as TorchRL's losses give them
            losses = {k: v.squeeze(-1) if k.startswith("loss_") else v for k, v in losses.items()}
        out = TensorDict(losses, batch_size=[])
        return out.select(*self._out_keys) if self._out_keys is not None else out

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
        the maths; ``entropy`` is left out unless ``entropy_coeff > 0`` needs it.
        ``action_index`` (``action.argmax(-1, keepdim=True)``) saves recomputing it on repeated calls."""
        log_probs = log_softmax(logits)
        if action_index is None:
            action_index = action.argmax(-1, keepdim=True)
        log_prob = log_probs.gather(-1, action_index)  # the one-hot action's entry
        # the entropy only when it is a loss term: as a metric, once per batch is enough
        entropy = -(log_probs.exp() * log_probs).sum(-1) if self.entropy_coeff > 0 else None

        def reduce(x, **kw):
            return self._reduce_loss(x, mask=mask, **kw)

        actor_reduce = reduce
        if mask is not None and self.reduction == "sum" and entropy is None:
            # zero weights off the mask give the same masked sum with one autograd node fewer
            advantage = torch.where(mask.unsqueeze(-1), advantage, 0.0)
            actor_reduce = self._reduce_loss
        losses = self._losses(log_prob, entropy, advantage, actor_reduce)
        if self.critic_network is not None:
            if value is None or value_target is None:
                raise ValueError("step_losses with a critic needs its value and value_target")
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
        if self.entropy_coeff > 0:
            losses["loss_entropy"] = -self.entropy_coeff * reduce(entropy)
        return losses

    def critic_objective(self, tensordict: TensorDictBase) -> torch.Tensor:
        """``forward(tensordict)["loss_critic"]`` alone, without scoring the actor: what a batch's
        extra critic steps (``train.value_steps``; Spinning Up's VPG takes 80) minimize."""
        loss_critic, _ = self.loss_critic(tensordict)
        return self._reduce_loss(loss_critic, tensordict)

    def loss_critic(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, None]:
        """``critic_coeff * distance(V(s), value_target)`` per step, unreduced, and ``None``
        (no value clipping): the ``(loss, clip_fraction)`` pair TorchRL's ``A2CLoss.loss_critic``
        returns; :meth:`forward` reduces it like the actor loss."""
        if self.critic_network is None:
            raise RuntimeError("this ReinforceLoss has no critic: pass critic_network=... to train one.")
        target = self._get(tensordict, self.tensor_keys.value_target, "the critic's regression target")
        with self._params("critic_network"):
            value = self.critic_network(tensordict.select(*self.critic_network.in_keys, strict=False)).get(
                self.tensor_keys.value
            )
        return self._critic_loss(value, target, lambda x, **kw: x), None

    def _critic_loss(self, value: torch.Tensor, value_target: torch.Tensor, reduce) -> torch.Tensor:
        return self.critic_coeff * reduce(distance_loss(value_target.detach(), value, self.loss_critic_type))

"""PPO's clipped surrogate, fenced: TorchRL's ``ClipPPOLoss`` with a plain-tensor forward for the
policy shapes of :mod:`pgtorchrl.modules.fast_policies`.

Why it exists: PPO's update is 320 minibatch steps of 64 samples per 2048 frames (CleanRL's
MuJoCo settings), and on small minibatches TorchRL's ``ClipPPOLoss.forward`` costs more than the
maths: a TensorDict clone, a distribution object, the actor and critic called on TensorDicts, a
TensorDict of outputs. Measured here (HalfCheetah-v5, (64, 64) tanh networks, 1 thread) it took
about 830 us of a 1.6 ms minibatch step. :class:`ClipPPOLoss` is that loss (a subclass: the
same constructor, keys, value estimators and outputs) whose :meth:`ClipPPOLoss.forward` computes
the same terms from the networks' own modules on plain tensors, and hands every case it does not
cover to TorchRL's ``forward`` (the plain path): see :meth:`ClipPPOLoss.fast_path`.
``tests/test_ppo_loss.py`` checks that both paths give the same outputs and gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, dispatch
from torchrl.objectives import ClipPPOLoss as TorchRLClipPPOLoss
from torchrl.objectives.utils import distance_loss

from pgtorchrl.modules.fast_policies import (
    categorical_log_prob_and_entropy,
    categorical_logits_net,
    distribution_log_prob_and_entropy,
    gaussian_log_prob_and_entropy,
    gaussian_net,
    policy_mlp,
)
from pgtorchrl.modules.models import GaussianHead
from pgtorchrl.modules.plain_mlp import mlp_layers
from pgtorchrl.modules.shared_encoder import shared_trunk
from pgtorchrl.objectives.ppo_gradients import (
    ClippedValue,
    categorical_logits_grad,
    critic_value_grad,
    gaussian_grads,
    mlp_backward,
    mlp_forward,
    surrogate_log_prob_grad,
)

__all__ = ["ClipPPOLoss"]


class ClipPPOLoss(TorchRLClipPPOLoss):
    r"""PPO's clipped surrogate objective (Schulman et al. 2017, eq. 7), with TorchRL's options:

    .. math::

        \mathcal{L}_{objective} = -\frac{1}{N}\sum_i \min\big(r_i \hat A_i,\;
        \mathrm{clip}(r_i, 1-\epsilon, 1+\epsilon)\,\hat A_i\big),
        \qquad r_i = \frac{\pi_\theta(a_i \mid s_i)}{\pi_{\theta_{old}}(a_i \mid s_i)},

    plus ``critic_coeff`` times the (optionally clipped, ``clip_value``) value regression on
    ``value_target`` and, with ``entropy_bonus``, ``-entropy_coeff`` times the policy's entropy;
    ``normalize_advantage`` standardizes :math:`\hat A` per call (per minibatch).

    This is :class:`torchrl.objectives.ClipPPOLoss` itself (same constructor and keyword names,
    ``set_keys``, value estimators and outputs: ``loss_objective``, ``loss_critic``,
    ``loss_entropy``, ``entropy``, ``clip_fraction``, ``value_clip_fraction``, ``kl_approx``,
    ``explained_variance``, ``ESS``, ``max_ratio``, ``mean_ratio``); only its forward is faster
    where :meth:`fast_path` holds.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> from pgtorchrl.modules.models import make_gaussian_actor, make_critic
        >>> actor = make_gaussian_actor(3, Bounded(-1.0, 1.0, shape=(2,)), hidden_sizes=[8])
        >>> from torchrl.data import Unbounded
        >>> critic = make_critic(Unbounded(3), hidden_sizes=[8])
        >>> loss = ClipPPOLoss(actor, critic, functional=False)
        >>> loss.set_keys(sample_log_prob="action_log_prob")
        >>> batch = actor(TensorDict({"observation": torch.randn(5, 3)}, [5]))
        >>> batch = critic(batch.detach())
        >>> batch["advantage"], batch["value_target"] = torch.randn(5, 1), torch.randn(5, 1)
        >>> loss.fast_path(batch)
        True
        >>> out = loss(batch)
        >>> out["loss_objective"].shape
        torch.Size([])
    """

    def fast_path(self, tensordict: TensorDictBase) -> bool:
        """Whether :meth:`forward` computes this batch on plain tensors: the networks called as
        they are (``functional=False``), a categorical or diagonal Gaussian actor
        (:func:`~pgtorchrl.modules.fast_policies.categorical_logits_net`,
        :func:`~pgtorchrl.modules.fast_policies.gaussian_net`), a critic that is one
        ``TensorDictModule`` writing the value key (and ``critic_coeff`` set), the advantage
        already in the batch, the ``"mean"`` reduction, no loss mask in the batch, and none of TorchRL's advantage
        scaling (``advantage_norm``, ``normalize_advantage_exclude_dims``), proximal policy
        (``delay_actor``), ratio cap (``max_importance_ratio``) or per-head entropy weights."""
        critic = self.critic_network
        return (
            not self.functional
            and self.reduction == "mean"
            and (gaussian_net(self.actor_network) is not None or categorical_logits_net(self.actor_network) is not None)
            and self._has_critic
            and isinstance(critic, TensorDictModule)
            and type(critic).forward is TensorDictModule.forward  # one module, not a sequence
            and list(critic.out_keys) == [self.tensor_keys.value]
            and self.tensor_keys.advantage in tensordict.keys(True)
            and not any(tensordict.get(key, None) is not None for key in (*self._loss_mask_keys(), "shifted_valid"))
            and self.advantage_norm is None
            and not self.normalize_advantage_exclude_dims
            and not self.delay_actor
            and self.max_importance_ratio is None
            and self._entropy_coeff_map is None
        )

    def __init__(self, *args, analytic_gradients: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.analytic_gradients = analytic_gradients

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not self.fast_path(tensordict):
            return super().forward(tensordict)
        logits, value = self._shared_trunk_outputs(tensordict)
        log_prob, entropy = distribution_log_prob_and_entropy(
            self.actor_network, tensordict, self.tensor_keys.action, logits
        )
        out, _, _ = self._outputs(tensordict, log_prob, entropy, value)
        return TensorDict(out, batch_size=[])

    def _outputs(
        self,
        tensordict: TensorDictBase,
        log_prob: torch.Tensor,
        entropy: torch.Tensor | None,
        value: torch.Tensor | None,
        statistics: bool = True,
    ) -> tuple[dict[str, torch.Tensor], _SurrogateTerms, _CriticTerms]:
        """The forward's outputs from the policy's log-probabilities and entropies (``None``
        where neither the loss nor the statistics read them) and the critic's values (``None``:
        computed here), and the intermediate terms the gradients by hand reuse
        (:class:`_SurrogateTerms`, :class:`_CriticTerms`). ``statistics=False``: the ``loss_*``
        terms only."""
        advantage = tensordict.get(self.tensor_keys.advantage)
        if self.normalize_advantage and advantage.numel() > 1:  # torchrl._utils._standardize
            advantage = (advantage - advantage.mean()) / advantage.std().clamp_min(torch.finfo(torch.float).resolution)
        prev_log_prob = tensordict.get(self.tensor_keys.sample_log_prob)
        if prev_log_prob.requires_grad:
            raise RuntimeError(f"tensordict stored {self.tensor_keys.sample_log_prob} requires grad.")
        log_weight = (log_prob - prev_log_prob).unsqueeze(-1)
        log_weight_clip = log_weight.clamp(*self._clip_bounds)
        unclipped = log_weight_clip == log_weight
        gain, gain_clip = log_weight.exp() * advantage, log_weight_clip.exp() * advantage
        out = {"loss_objective": -torch.minimum(gain, gain_clip).mean()}
        if statistics:
            out["clip_fraction"] = (~unclipped).to(log_weight.dtype).mean()
            out["kl_approx"] = (-log_weight).detach().mean()
        if self.entropy_bonus:
            assert entropy is not None  # computed wherever entropy_bonus reads it
            if statistics:
                out["entropy"] = entropy.detach().mean()
            out["loss_entropy"] = (-self.entropy_coeff * entropy.unsqueeze(-1)).mean()
        critic_out, critic_terms = self._critic_terms(tensordict, value, statistics)
        out.update(critic_out)
        if statistics:
            with torch.no_grad():  # ESS, as TorchRL logs it
                lw = log_weight.squeeze(-1)
                out["ESS"] = (2 * lw.logsumexp(0) - (2 * lw).logsumexp(0)).exp() / log_weight.shape[0]
                ratio = log_weight.exp()
                out["max_ratio"], out["mean_ratio"] = ratio.max(), ratio.mean()
        return out, _SurrogateTerms(gain, gain_clip, unclipped), critic_terms

    def analytic_path(self, tensordict: TensorDictBase) -> bool:
        """Whether :meth:`forward_backward` takes the gradients by hand
        (:mod:`pgtorchrl.objectives.ppo_gradients`): ``analytic_gradients`` on, :meth:`fast_path`,
        a flat batch, an actor whose network is an MLP (TorchRL's ``MLP`` of ``Linear`` and
        ``Tanh``/``ReLU`` layers) writing logits, or writing a Gaussian's mean beside a
        state-independent log-std (:class:`~pgtorchrl.modules.models.GaussianHead`), and a
        critic that is such an MLP (so no shared trunk), under an l1, l2 or smooth_l1 critic loss."""
        return (
            self.analytic_gradients
            and tensordict.batch_dims == 1
            and self.loss_critic_type in ("l1", "l2", "smooth_l1")
            and self.fast_path(tensordict)
            and self._mlp_networks() is not None
        )

    def minibatch_keys(self, tensordict: TensorDictBase) -> list | None:
        """The keys :meth:`forward_backward` reads from a minibatch of ``tensordict``'s steps where
        :meth:`analytic_path` holds on ``tensordict`` (the networks' inputs, the action, its
        collecting log-probability, the advantage, the value target and, with ``clip_value``, the
        collected value), so that a trainer may gather only these for its minibatches (a gather
        and split of every key of a MuJoCo batch cost 4% of PPO's update here); else ``None``:
        every key, as TorchRL's forward may read any."""
        if not self.analytic_path(tensordict):
            return None
        found = self._mlp_networks()
        assert found is not None  # analytic_path
        keys = self.tensor_keys
        read = [*found[0].in_keys, *self.critic_network.in_keys, keys.action, keys.sample_log_prob, keys.advantage]
        read += [keys.value_target, *([keys.value] if self.clip_value else [])]
        return list(dict.fromkeys(read))

    def _mlp_networks(self) -> tuple[TensorDictModule, list, list] | None:
        """The actor's network with its MLP layers (its mean's, for a Gaussian) and the critic's
        MLP layers, else ``None``; read once (the networks' structure, and which parameters are
        trainable, are set when they are built), as the per-minibatch checks cost 0.1 ms."""
        if not hasattr(self, "_mlp_networks_cache"):
            net = gaussian_net(self.actor_network) or categorical_logits_net(self.actor_network)
            layers = policy_mlp(net, trainable=True) if net is not None else None
            critic_layers = mlp_layers(self.critic_network.module, trainable=True) if self._has_critic else None
            found = (net, layers, critic_layers) if layers is not None and critic_layers is not None else None
            self.__dict__["_mlp_networks_cache"] = found  # a plain attribute, not a submodule
        return self.__dict__["_mlp_networks_cache"]

    def forward_backward(self, tensordict: TensorDictBase, statistics: bool = True) -> TensorDictBase:
        """The outputs of :meth:`forward`, detached, with the gradient of the sum of their
        ``loss_*`` terms accumulated into the parameters' ``.grad`` as ``backward()`` would
        accumulate it: by hand where :meth:`analytic_path` holds (the same gradients up to float
        rounding, ``tests/test_ppo_gradients.py``), else ``forward`` then ``backward``.
        ``statistics=False`` (by hand only): the ``loss_*`` terms alone, for the minibatches
        whose statistics (clip fraction, ESS, ...) nobody reads."""
        if not self.analytic_path(tensordict):
            out = self(tensordict)
            sum(v for k, v in out.items() if k.startswith("loss_")).backward()
            return out.detach()
        return self.analytic_forward_backward(tensordict, statistics)

    def analytic_forward_backward(self, tensordict: TensorDictBase, statistics: bool = True) -> TensorDictBase:
        """:meth:`forward_backward` by hand, without checking :meth:`analytic_path` on
        ``tensordict``: for the minibatches of a batch on which it held, with at least the keys of
        :meth:`minibatch_keys` (the trainer's; the check, about 20 us, was 4% of PPO's MuJoCo
        update here). Elsewhere call :meth:`forward_backward`."""
        with torch.no_grad():
            return self._analytic_forward_backward(tensordict, statistics)

    def _analytic_forward_backward(self, tensordict: TensorDictBase, statistics: bool) -> TensorDictBase:
        found = self._mlp_networks()
        assert found is not None  # analytic_path
        net, layers, critic_layers = found
        gaussian = isinstance(net.module, GaussianHead)
        entropy_read = self.entropy_bonus or statistics
        action = tensordict.get(self.tensor_keys.action)
        out_actor, actor_tape = mlp_forward(layers, _mlp_input(tensordict, net.in_keys))
        if gaussian:
            log_std = net.module.log_std
            scale = log_std.exp().expand_as(out_actor)
            log_prob, entropy = gaussian_log_prob_and_entropy(action, out_actor, scale, entropy=entropy_read)
        else:
            log_prob, entropy = categorical_log_prob_and_entropy(action, out_actor)
        value, critic_tape = mlp_forward(critic_layers, _mlp_input(tensordict, self.critic_network.in_keys))
        out, surrogate, critic = self._outputs(tensordict, log_prob, entropy, value, statistics)

        grad_log_prob = surrogate_log_prob_grad(*surrogate).squeeze(-1)
        grad_entropy = -self.entropy_coeff / log_prob.shape[0] if self.entropy_bonus else 0.0
        if gaussian:
            grad_loc, grad_log_std = gaussian_grads(grad_log_prob, grad_entropy, action, out_actor, log_std)
            grads = [*mlp_backward(layers, actor_tape, grad_loc), (log_std, grad_log_std)]
        else:
            grad_logits = categorical_logits_grad(grad_log_prob, grad_entropy, action, out_actor)
            grads = mlp_backward(layers, actor_tape, grad_logits)
        grad_value = critic_value_grad(value, critic.target, self.loss_critic_type, self.critic_coeff, critic.clipped)
        grads += mlp_backward(critic_layers, critic_tape, grad_value)
        for param, grad in grads:
            if param.grad is None:
                param.grad = grad
            else:
                param.grad += grad
        return TensorDict(out, batch_size=[])

    def _shared_trunk_outputs(self, tensordict: TensorDictBase) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The logits and the value from one pass of the observation encoder that a categorical
        actor and the critic share (``critic.share_encoder``:
        :func:`~pgtorchrl.modules.shared_encoder.shared_trunk`), as CleanRL's Atari agent computes
        them: the same numbers as each network's own pass, and the encoder's gradient the sum of
        both heads' (TorchRL's forward runs the CNN twice, forward and backward). ``(None,
        None)`` where nothing is shared (or ``separate_losses``: TorchRL's own treatment)."""
        net = categorical_logits_net(self.actor_network)
        trunk = shared_trunk(net, self.critic_network) if net is not None and not self.separate_losses else None
        if trunk is None:
            return None, None
        encoder, actor_head, critic_head = trunk
        features = encoder(*(tensordict.get(k) for k in self.critic_network.in_keys))
        return actor_head(features), critic_head(features)

    def _critic_terms(
        self, tensordict: TensorDictBase, value: torch.Tensor | None = None, statistics: bool = True
    ) -> tuple[dict[str, torch.Tensor], _CriticTerms]:
        """``loss_critic`` (times ``critic_coeff``, reduced), ``value_clip_fraction`` (with
        ``clip_value``) and ``explained_variance`` (both only with ``statistics``): TorchRL's
        ``PPOLoss.loss_critic`` on tensors (``value``: the critic's output, where the caller
        computed it already); and the terms its gradient by hand reuses."""
        critic = self.critic_network
        target = tensordict.get(self.tensor_keys.value_target)
        if value is None:
            inputs = (tensordict.get(k) for k in critic.in_keys)
            value = critic.module(*(x.detach() for x in inputs) if self.separate_losses else inputs)
        loss = distance_loss(target, value, loss_function=self.loss_critic_type)
        out = {}
        clipped = None
        if self.clip_value:
            old = tensordict.get(self.tensor_keys.value)
            moved = value - old
            moved_clip = moved.clamp(-self.clip_value, self.clip_value)
            inside = moved_clip == moved
            if statistics:
                with torch.no_grad():
                    out["value_clip_fraction"] = (~inside).to(value.dtype).mean()
            value_clip = old + moved_clip
            loss_clip = distance_loss(target, value_clip, loss_function=self.loss_critic_type)
            clipped = ClippedValue(value_clip, loss, loss_clip, inside)
            loss = torch.maximum(loss, loss_clip)
        if self.log_explained_variance and statistics:
            with torch.no_grad():
                residual = torch.var(target - value, correction=0, dim=0)
                total = torch.var(target, correction=0, dim=0)
                out["explained_variance"] = 1.0 - residual / (total + torch.finfo(target.dtype).eps)
        out = {"loss_critic": (self.critic_coeff * loss).mean(), **out}
        return out, _CriticTerms(target, clipped)


class _SurrogateTerms(NamedTuple):
    r"""The clipped surrogate's two gains per sample, :math:`r_i \hat A_i` and
    :math:`\mathrm{clip}(r_i)\hat A_i`, and where the ratio lies inside the clip range
    (:func:`~pgtorchrl.objectives.ppo_gradients.surrogate_log_prob_grad`'s arguments)."""

    gain: torch.Tensor
    gain_clip: torch.Tensor
    unclipped: torch.Tensor


class _CriticTerms(NamedTuple):
    """The value regression's target and, with ``clip_value``, its clipped branch."""

    target: torch.Tensor
    clipped: ClippedValue | None


def _mlp_input(tensordict: TensorDictBase, in_keys) -> torch.Tensor:
    """What TorchRL's ``MLP`` reads from ``in_keys``: the one input, or several concatenated."""
    inputs = [tensordict.get(k) for k in in_keys]
    return inputs[0] if len(inputs) == 1 else torch.cat(inputs, -1)

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

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, dispatch
from torchrl.objectives import ClipPPOLoss as TorchRLClipPPOLoss
from torchrl.objectives.utils import distance_loss

from pgtorchrl.modules.fast_policies import categorical_logits_net, distribution_log_prob_and_entropy, gaussian_net
from pgtorchrl.modules.shared_encoder import shared_trunk

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

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not self.fast_path(tensordict):
            return super().forward(tensordict)
        advantage = tensordict.get(self.tensor_keys.advantage)
        if self.normalize_advantage and advantage.numel() > 1:  # torchrl._utils._standardize
            advantage = (advantage - advantage.mean()) / advantage.std().clamp_min(torch.finfo(torch.float).resolution)
        prev_log_prob = tensordict.get(self.tensor_keys.sample_log_prob)
        if prev_log_prob.requires_grad:
            raise RuntimeError(f"tensordict stored {self.tensor_keys.sample_log_prob} requires grad.")
        logits, value = self._shared_trunk_outputs(tensordict)
        log_prob, entropy = distribution_log_prob_and_entropy(
            self.actor_network, tensordict, self.tensor_keys.action, logits
        )
        log_weight = (log_prob - prev_log_prob).unsqueeze(-1)
        with torch.no_grad():  # ESS, as TorchRL logs it
            lw = log_weight.squeeze(-1)
            ess = (2 * lw.logsumexp(0) - (2 * lw).logsumexp(0)).exp() / log_weight.shape[0]
        log_weight_clip = log_weight.clamp(*self._clip_bounds)
        gain = torch.minimum(log_weight.exp() * advantage, log_weight_clip.exp() * advantage)
        out = {
            "loss_objective": -gain.mean(),
            "clip_fraction": (log_weight_clip != log_weight).to(log_weight.dtype).mean(),
            "kl_approx": (-log_weight).detach().mean(),
        }
        if self.entropy_bonus:
            out["entropy"] = entropy.detach().mean()
            out["loss_entropy"] = (-self.entropy_coeff * entropy.unsqueeze(-1)).mean()
        out.update(self._critic_terms(tensordict, value))
        out["ESS"] = ess
        with torch.no_grad():
            ratio = log_weight.exp()
            out["max_ratio"], out["mean_ratio"] = ratio.max(), ratio.mean()
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

    def _critic_terms(self, tensordict: TensorDictBase, value: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``loss_critic`` (times ``critic_coeff``, reduced), ``value_clip_fraction`` (with
        ``clip_value``) and ``explained_variance``: TorchRL's ``PPOLoss.loss_critic`` on tensors
        (``value``: the critic's output, where the caller computed it already)."""
        critic = self.critic_network
        target = tensordict.get(self.tensor_keys.value_target)
        if value is None:
            inputs = (tensordict.get(k) for k in critic.in_keys)
            value = critic.module(*(x.detach() for x in inputs) if self.separate_losses else inputs)
        loss = distance_loss(target, value, loss_function=self.loss_critic_type)
        out = {}
        if self.clip_value:
            old = tensordict.get(self.tensor_keys.value)
            moved = value - old
            clipped = moved.clamp(-self.clip_value, self.clip_value)
            with torch.no_grad():
                out["value_clip_fraction"] = (moved != clipped).to(value.dtype).mean()
            loss = torch.maximum(loss, distance_loss(target, old + clipped, loss_function=self.loss_critic_type))
        if self.log_explained_variance:
            with torch.no_grad():
                residual = torch.var(target - value, correction=0, dim=0)
                total = torch.var(target, correction=0, dim=0)
                out["explained_variance"] = 1.0 - residual / (total + torch.finfo(target.dtype).eps)
        out = {"loss_critic": (self.critic_coeff * loss).mean(), **out}
        return out

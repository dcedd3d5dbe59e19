"""TensorDict modules that write ``advantage`` and ``value_target`` into a collected batch.

Thin wrappers over :mod:`pgtorchrl.objectives.value.functional`: they read the batch's keys, run the critic (if
any) on ``observation`` and ``("next", "observation")`` without gradients, call the pure maths and
write the results back. A batch is a TorchRL collector batch shaped ``[*envs, T]``, or a
whole-episode batch ``[episodes, T_max]`` whose ``("collector", "mask")`` marks the real steps.

The estimators are the slides' sequence (Sutton & Barto 2018 Ch. 13; Spinning Up, "Intro to
Policy Optimization"):

=================  ==========================================================  ===============
name               weight of :math:`\\nabla \\log \\pi(a_t|s_t)`                    class
=================  ==========================================================  ===============
``full_return``    :math:`G(\\tau) - b`                                          FullReturn
``reward_to_go``   :math:`G_t - b` (``b = V(s_t)``: REINFORCE with baseline)     RewardToGo
``td_error``       :math:`r_t + \\gamma V(s_{t+1}) - V(s_t)`                     TDError
``gae``            GAE(:math:`\\lambda`) (vanilla policy gradient)               GAE
=================  ==========================================================  ===============

Options shared by all: ``normalize`` (standardize over the batch), ``gamma_t_factor`` (the
:math:`\\gamma^t` of Sutton & Barto's box) and ``truncation``: what a time-limit cut means.
``"bootstrap"`` continues the return with :math:`V(s_T)` (Spinning Up's ``finish_path``),
``"drop"`` removes truncated episodes from the batch (whole-episode batches only) and
``"terminal"`` treats the cut as a true end, which is only ever done when asked for.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey

from pgtorchrl.objectives.value.functional import discount_weights, episode_return, generalized_advantage, reward_to_go
from pgtorchrl.objectives.value.options import ESTIMATORS, critic_problem, option_fields, validated

__all__ = ["AdvantageEstimator", "FullReturn", "RewardToGo", "TDError", "GAE"]


def _next(key: NestedKey) -> tuple:
    return ("next", *key) if isinstance(key, tuple) else ("next", key)


class AdvantageEstimator(TensorDictModuleBase):
    """Shared key handling, critic evaluation, truncation, masking and normalization.

    Subclasses implement :meth:`_estimate`, mapping tensors to ``(advantage, value_target)``.

    Args:
        value_network: the critic, a module writing ``state_value`` from the state alone, or
            ``None`` (TorchRL's keyword name, as in :class:`torchrl.objectives.value.GAE`).
        **options: keyword-only, those of the estimator's options class in
            :mod:`pgtorchrl.objectives.value.options` (``gamma``, ``normalize``, ``truncation``,
            ``gamma_t_factor``; ``baseline`` for the Monte Carlo returns, ``lmbda`` for GAE), with
            the same types, ranges and defaults as the spec's ``advantage:`` section.

    After each call, :attr:`stats` holds the advantage's mean and std before normalization.
    """

    @dataclass
    class _AcceptedKeys:
        """Tensordict keys read and written; change them with :meth:`set_keys`.

        Attributes:
            reward, done, terminated: read under ``"next"``.
            value: the critic's output. Defaults to ``"state_value"``.
            advantage, value_target: written.
            step_count: the step index ``t`` of ``s_t`` (read for ``gamma_t_factor``).
            mask: valid steps of a padded whole-episode batch; truncated episodes are removed
                from it when ``truncation="drop"``. Defaults to ``("collector", "mask")``.
        """

        reward: NestedKey = "reward"
        done: NestedKey = "done"
        terminated: NestedKey = "terminated"
        value: NestedKey = "state_value"
        advantage: NestedKey = "advantage"
        value_target: NestedKey = "value_target"
        step_count: NestedKey = "step_count"
        mask: NestedKey = ("collector", "mask")

    spec_name = ""
    """The estimator's registry name: its options, and whether it needs a critic, come from
    :data:`pgtorchrl.objectives.value.options.ESTIMATORS` (written once for the class and the spec)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.spec_name:  # the constructor's signature, as help() and inspect show it
            params = [inspect.Parameter("value_network", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
            params += [
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
                for name, annotation, default in option_fields(ESTIMATORS[cls.spec_name].options)
            ]
            cls.__signature__ = inspect.Signature(params)

    def __init__(self, value_network: TensorDictModuleBase | None = None, **options):
        super().__init__()
        name = type(self).__name__
        critic = value_network
        opts = validated(ESTIMATORS[self.spec_name].options, name, options)
        problem = critic_problem(self.spec_name, opts, critic is not None)
        if problem is not None:
            field, message = problem
            raise ValueError(f"{name}: {message}" if field == "name" else f"{name}: {field}: {message}")
        if critic is not None and any(k in ("action", ("action",)) for k in critic.in_keys):
            raise ValueError(
                f"{name}: the critic reads 'action', but a baseline may depend on the state only "
                f"(an action-dependent baseline biases the policy gradient); use a ValueOperator on observations."
            )
        for key, value in asdict(opts).items():  # gamma, normalize, truncation, gamma_t_factor (+ lmbda, baseline)
            setattr(self, key, value)
        self.critic = critic
        self.tensor_keys = self._AcceptedKeys()
        self.stats: dict[str, float] = {}

    def set_keys(self, **kwargs: NestedKey) -> None:
        """Renames the tensordict keys this module reads and writes."""
        for name, key in kwargs.items():
            if name not in self._AcceptedKeys.__dataclass_fields__:
                raise ValueError(
                    f"{name!r} is not a key of {type(self).__name__}; accepted: "
                    f"{sorted(self._AcceptedKeys.__dataclass_fields__)}."
                )
            setattr(self.tensor_keys, name, key)

    @property
    def in_keys(self) -> list[NestedKey]:
        k = self.tensor_keys
        keys = [("next", k.reward), ("next", k.done), ("next", k.terminated)]
        if self.critic is not None:
            keys += list(self.critic.in_keys) + [_next(key) for key in self.critic.in_keys]
        if self.gamma_t_factor:
            keys.append(k.step_count)
        return keys

    @property
    def out_keys(self) -> list[NestedKey]:
        k = self.tensor_keys
        keys = [k.advantage, k.value_target]
        if self.critic is not None:
            keys += [k.value, ("next", k.value)]
        return keys

    @torch.no_grad()
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        k = self.tensor_keys
        value = next_value = None
        if self.critic is not None:
            value = self.critic(tensordict).get(k.value)
            next_value = self.critic(tensordict.get("next")).get(k.value)
        reward = tensordict.get(("next", k.reward))
        done = tensordict.get(("next", k.done))
        terminated = tensordict.get(("next", k.terminated))
        mask = tensordict.get(k.mask, None)
        if self.truncation == "terminal":
            terminated = done  # asked for explicitly: the time limit is the episode's end
        elif self.truncation == "drop":
            if mask is None:
                raise ValueError(
                    "truncation='drop' needs whole-episode batches: set collector.trajs_per_batch "
                    "or use the 'episodes' collector."
                )
            cut = (done & ~terminated).squeeze(-1) & mask
            mask = mask & ~cut.any(-1, keepdim=True)  # each row is one episode: drop it whole
            tensordict.set(k.mask, mask)
        valid = torch.ones_like(reward, dtype=torch.bool) if mask is None else mask.unsqueeze(-1).expand_as(reward)
        advantage, value_target = self._estimate(reward, done, terminated, value, next_value, valid)
        if self.gamma_t_factor and self.gamma != 1.0:  # gamma^t = 1 for gamma = 1
            advantage = advantage * discount_weights(tensordict.get(k.step_count), self.gamma).to(advantage.dtype)
        advantage = torch.where(valid, advantage, 0.0)  # padding and dropped episodes weigh nothing
        selected = advantage[valid]
        mean = selected.mean() if selected.numel() else advantage.new_zeros(())
        std = selected.std(unbiased=False) if selected.numel() > 1 else advantage.new_ones(())
        self.stats = {"advantage_mean": mean.item(), "advantage_std": std.item()}
        if self.normalize:
            advantage = torch.where(valid, (advantage - mean) / std.clamp_min(1e-8), 0.0)
        tensordict.set(k.advantage, advantage)
        tensordict.set(k.value_target, value_target)
        return tensordict

    def _estimate(self, reward, done, terminated, value, next_value, valid):
        raise NotImplementedError  # abstract: each estimator states its own formula

    @property
    def refreshes(self) -> bool:
        """Whether :meth:`refresh` changes anything: only a critic baseline of a Monte Carlo return
        moves with the critic's weights between per-step updates."""
        return False

    def refresh(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Recomputes the advantage of already-estimated steps with the critic's current
        weights, for per-step updates (Sutton & Barto's box computes delta = G_t - v(S_t, w) with
        the w of that step). Only a critic baseline of a Monte Carlo return depends on it
        (:attr:`refreshes`); the other estimators keep the advantage they wrote."""
        if not self.refreshes:
            return tensordict
        k = self.tensor_keys
        if self.critic is None:  # refreshes only with a critic baseline
            raise RuntimeError(f"{type(self).__name__}.refresh needs a critic")
        with torch.no_grad():
            value = self.critic(tensordict).get(k.value)
        step_count = tensordict.get(k.step_count) if self.gamma_t_factor else None
        advantage = self.refreshed(tensordict.get(k.value_target), value, step_count, tensordict.get(k.mask, None))
        tensordict.set(k.advantage, advantage)
        return tensordict

    def refreshed(
        self,
        value_target: torch.Tensor,
        value: torch.Tensor,
        step_count: torch.Tensor | None,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        r""":meth:`refresh` on tensors: :math:`\gamma^t (G_t - \hat v(S_t, w))` (the box's
        :math:`\gamma^t \delta`, Sutton & Barto 2018 Sec. 13.4), zero off ``mask``;
        ``step_count`` is read only with ``gamma_t_factor``."""
        advantage = value_target - value.detach()
        if self.gamma_t_factor and self.gamma != 1.0:  # gamma^t = 1 for gamma = 1
            if step_count is None:
                raise ValueError("gamma_t_factor weighs each step by gamma^t: pass its step_count")
            advantage = advantage * discount_weights(step_count, self.gamma).to(advantage.dtype)
        if mask is not None:
            advantage = torch.where(mask.unsqueeze(-1), advantage, 0.0)
        return advantage


class _ReturnWeighted(AdvantageEstimator):
    """Estimators whose weight is a Monte Carlo return minus a state-only baseline.

    ``baseline``: ``"none"``; ``"mean"`` (a constant, the batch's mean weight); ``"critic"``
    (:math:`V(s_t)`, REINFORCE with baseline); ``"auto"``: the critic when there is one.
    The critic's regression target is always the reward-to-go :math:`G_t`.
    """

    baseline: str  # set from the options by AdvantageEstimator.__init__

    def __init__(self, value_network: TensorDictModuleBase | None = None, **options):
        super().__init__(value_network, **options)
        if self.baseline == "auto":
            self.baseline = "critic" if value_network is not None else "none"

    def _returns(self, to_go, reward, done, terminated, next_value) -> torch.Tensor:
        raise NotImplementedError  # abstract: G(tau) or G_t (``to_go`` is G_t, computed once)

    @property
    def refreshes(self) -> bool:
        # G(tau) - v(S_t) is not G_t - v(S_t); normalized weights are batch-level: neither refreshes
        return self.baseline == "critic" and not self.normalize and not isinstance(self, FullReturn)

    def _estimate(self, reward, done, terminated, value, next_value, valid):
        value_target = reward_to_go(reward, done, terminated, next_value, self.gamma)
        weights = self._returns(value_target, reward, done, terminated, next_value)
        if self.baseline == "critic":
            weights = weights - value
        elif self.baseline == "mean":
            weights = weights - weights[valid].mean()
        return weights, value_target


class FullReturn(_ReturnWeighted):
    r"""Every step of an episode weighted by the same :math:`G(\tau)` (minus a baseline).

    The first estimator of the slides ("Plugging grad-log-prob into the gradient update");
    needs whole-episode batches. Formula: :func:`pgtorchrl.objectives.value.functional.episode_return`.
    """

    spec_name = "full_return"

    def _returns(self, to_go, reward, done, terminated, next_value):
        return episode_return(reward, done, terminated, next_value, self.gamma)


class RewardToGo(_ReturnWeighted):
    r"""Reward-to-go weights :math:`G_t` (minus a baseline).

    Without a critic this is critic-free REINFORCE (``advantage = value_target = G_t``); with
    ``baseline="critic"`` it is REINFORCE with baseline (:math:`\delta = G_t - \hat v(S_t, w)`,
    Sutton & Barto 2018 Sec. 13.4), the Monte Carlo advantage. The formula lives in
    :func:`pgtorchrl.objectives.value.functional.reward_to_go`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"next": {"reward": torch.ones(1, 3, 1),
        ...     "done": torch.tensor([[[False], [False], [True]]]),
        ...     "terminated": torch.tensor([[[False], [False], [True]]])}}, [1, 3])
        >>> RewardToGo(gamma=1.0, truncation="terminal")(td)["advantage"].flatten().tolist()
        [3.0, 2.0, 1.0]
    """

    spec_name = "reward_to_go"

    def _returns(self, to_go, reward, done, terminated, next_value):
        return to_go


class GAE(AdvantageEstimator):
    r"""GAE(:math:`\lambda`) advantage with the critic as baseline (vanilla policy gradient).

    ``value_target`` is :math:`\hat A_t + V(s_t)` (the TD(:math:`\lambda`) return), the critic's
    regression target as in Spinning Up's VPG. The formula lives in
    :func:`pgtorchrl.objectives.value.functional.generalized_advantage`.

    Args:
        value_network: the critic, a state-value module (required).
        gamma, lmbda, normalize, truncation, gamma_t_factor: see
            :class:`pgtorchrl.objectives.value.options.GAEOptions`.
    """

    spec_name = "gae"

    def _estimate(self, reward, done, terminated, value, next_value, valid):
        advantage = generalized_advantage(reward, value, next_value, done, terminated, self.gamma, self.lmbda)
        return advantage, advantage + value


class TDError(GAE):
    r"""The one-step TD error :math:`\delta_t = r_t + \gamma V(s_{t+1}) - V(s_t)` as advantage
    (GAE with :math:`\lambda = 0`; the slides' "TD-error, or advantage")."""

    spec_name = "td_error"
    lmbda = 0.0  # GAE(0) is the TD error

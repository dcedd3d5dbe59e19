"""TensorDict modules that write ``advantage`` and ``value_target`` into a collected batch.

Thin wrappers over :mod:`pgtorchrl.functional`: they read the batch's keys, run the critic (if
any) on ``observation`` and ``("next", "observation")`` without gradients, call the pure maths and
write the results back. A batch is a TorchRL collector batch shaped ``[*envs, T]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey

from pgtorchrl.functional import generalized_advantage_estimate, reward_to_go

__all__ = ["AdvantageEstimator", "RewardToGo", "GAE"]


class AdvantageEstimator(TensorDictModuleBase):
    """Shared key handling, critic evaluation and normalization of the advantage estimators.

    Subclasses implement :meth:`_estimate`, which maps tensors to ``(advantage, value_target)``.

    Args:
        critic: a module writing ``state_value`` from the observation keys, or ``None``.
        gamma: discount factor in ``[0, 1]``.
        normalize: whether to standardize the advantage over the batch (zero mean, unit std).
    """

    @dataclass
    class _AcceptedKeys:
        """Tensordict keys read and written; change them with :meth:`set_keys`.

        Attributes:
            reward: read under ``"next"``. Defaults to ``"reward"``.
            done: read under ``"next"``. Defaults to ``"done"``.
            terminated: read under ``"next"``. Defaults to ``"terminated"``.
            value: the critic's output. Defaults to ``"state_value"``.
            advantage: written. Defaults to ``"advantage"``.
            value_target: written (the critic's regression target). Defaults to ``"value_target"``.
        """

        reward: NestedKey = "reward"
        done: NestedKey = "done"
        terminated: NestedKey = "terminated"
        value: NestedKey = "state_value"
        advantage: NestedKey = "advantage"
        value_target: NestedKey = "value_target"

    requires_critic = False

    def __init__(self, critic: TensorDictModuleBase | None = None, *, gamma: float = 0.99, normalize: bool = False):
        super().__init__()
        if self.requires_critic and critic is None:
            raise ValueError(
                f"{type(self).__name__} needs a critic (a state-value module): add a `critic:` "
                f"section to the spec, or use the critic-free `reward_to_go` advantage."
            )
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma={gamma} is outside [0, 1].")
        self.critic = critic
        self.gamma = float(gamma)
        self.normalize = normalize
        self.tensor_keys = self._AcceptedKeys()

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
        advantage, value_target = self._estimate(reward, done, terminated, value, next_value)
        if self.normalize:
            advantage = (advantage - advantage.mean()) / advantage.std().clamp_min(1e-8)
        tensordict.set(k.advantage, advantage)
        tensordict.set(k.value_target, value_target)
        return tensordict

    def _estimate(self, reward, done, terminated, value, next_value):
        raise NotImplementedError  # abstract: each estimator states its own formula


def _next(key: NestedKey) -> tuple:
    return ("next", *key) if isinstance(key, tuple) else ("next", key)


class RewardToGo(AdvantageEstimator):
    r"""Reward-to-go weights :math:`G_t`, minus :math:`V(s_t)` when a critic is given.

    Without a critic this is critic-free REINFORCE (``advantage = value_target = G_t``); with one it
    is REINFORCE with a learned baseline (:math:`\delta = G_t - \hat v(S_t, w)`, Sutton & Barto
    2018 Sec. 13.4), and truncations and batch ends are bootstrapped with :math:`V(s_{t+1})`.
    The formula lives in :func:`pgtorchrl.functional.reward_to_go`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"next": {"reward": torch.ones(1, 3, 1),
        ...     "done": torch.tensor([[[False], [False], [True]]]),
        ...     "terminated": torch.tensor([[[False], [False], [True]]])}}, [1, 3])
        >>> RewardToGo(gamma=1.0)(td)["advantage"].flatten().tolist()
        [3.0, 2.0, 1.0]
    """

    def _estimate(self, reward, done, terminated, value, next_value):
        returns = reward_to_go(reward, done, terminated, next_value, self.gamma)
        advantage = returns if value is None else returns - value
        return advantage, returns


class GAE(AdvantageEstimator):
    r"""GAE(:math:`\lambda`) advantage with the critic as baseline (vanilla policy gradient).

    ``value_target`` is :math:`\hat A_t + V(s_t)` (the TD(:math:`\lambda`) return), the critic's
    regression target as in Spinning Up's VPG. The formula lives in
    :func:`pgtorchrl.functional.generalized_advantage_estimate`.

    Args:
        critic: the state-value module (required).
        gamma: discount in ``[0, 1]``.
        lmbda: the GAE :math:`\lambda` in ``[0, 1]``.
        normalize: standardize the advantage over the batch.
    """

    requires_critic = True

    def __init__(self, critic: TensorDictModuleBase, *, gamma: float = 0.99, lmbda: float = 0.95, normalize: bool = False):
        super().__init__(critic, gamma=gamma, normalize=normalize)
        if not 0.0 <= lmbda <= 1.0:
            raise ValueError(f"lmbda={lmbda} is outside [0, 1].")
        self.lmbda = float(lmbda)

    def _estimate(self, reward, done, terminated, value, next_value):
        advantage = generalized_advantage_estimate(
            reward, value, next_value, done, terminated, self.gamma, self.lmbda
        )
        return advantage, advantage + value

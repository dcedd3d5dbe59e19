"""What the pipeline relies on from each component kind, written once and checked once.

Every section of a spec builds a component; the trainer, the evaluation, the checkpoints and the
metrics use nothing of it beyond the contract of its kind below (TensorDict keys in and out, and
a few methods), so any TorchRL component, or a plugin's, that meets the contract fits. A
component that does not is a one-line :class:`ContractError` when the pipeline is built, before
any run is opened::

    loss: 'my_losses:bare' (BareLoss) lacks out_keys: a loss needs in_keys, out_keys naming its loss_* terms, ...

=============  =====================================================================================
kind           contract
=============  =====================================================================================
env            a TorchRL ``EnvBase`` with a 1-D batch (its envs), ``set_seed``, ``reset``/``step``;
               its batches carry ``("next", "reward" | "done" | "terminated")`` and, for the
               ``rollout/`` metrics, ``("next", "episode_reward")`` and ``("next", "step_count")``
               (TorchRL's ``RewardSum`` and ``StepCounter``)
actor          a probabilistic TensorDict module (``ProbabilisticActor``): ``in_keys`` written by
               the env, ``out_keys`` with ``action`` and its log-probability ``action_log_prob``,
               and ``get_dist(tensordict)`` (KL and entropy are read from that distribution)
critic         a TensorDict module writing ``state_value`` from env keys (``ValueOperator``)
advantage      a TensorDict module writing ``advantage`` and ``value_target`` into the batch
               (pgtorchrl's estimators, TorchRL's ``GAE``/``TD0Estimator``/``TDLambdaEstimator``);
               optionally ``stats``: metrics of its last call, logged under ``train/``
loss           a TensorDict module (TorchRL ``LossModule``) whose ``out_keys`` name scalar
               ``loss_*`` terms (summed and minimized); with a critic and ``train.value_steps > 1``
               one of them is the critic's (``loss_critic``, or TorchRL ``ReinforceLoss``'s
               ``loss_value``), which the extra critic steps minimize
collector      an iterable of TensorDict batches shaped ``[*envs, time]`` with ``shutdown()``
               (``torchrl.collectors.Collector``)
optim          a ``torch.optim.Optimizer``
=============  =====================================================================================

Capabilities beyond the contracts are declared here too: ``train.per_step_updates`` (Sutton &
Barto's boxed per-step updates) needs pgtorchrl's own ``ReinforceLoss`` and advantage
estimators, whose tensor-level methods it drives, and its ``fixed_point`` solver
(:mod:`pgtorchrl.trainers.per_step`) needs plain SGD, summed losses and one parameter row per run.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, runtime_checkable

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torchrl.envs import EnvBase

from pgtorchrl.modules.fast_policies import categorical_logits_net
from pgtorchrl.modules.models import LOG_PROB_KEY
from pgtorchrl.objectives.reinforce import ReinforceLoss
from pgtorchrl.objectives.value.advantages import AdvantageEstimator

__all__ = [
    "ContractError",
    "ActorContract",
    "CriticContract",
    "AdvantageContract",
    "LossContract",
    "CollectorContract",
    "CRITIC_TERMS",
    "check_components",
    "check_collector",
    "check_env",
    "check_optimizer",
    "critic_term",
    "per_step_unsupported",
    "fixed_point_unsupported",
    "not_on_tensors",
]

CRITIC_TERMS = ("loss_critic", "loss_value")
"""The names a loss gives its critic term: ``loss_critic`` (pgtorchrl, TorchRL's ``A2CLoss``,
``PPOLoss``) or ``loss_value`` (TorchRL's ``ReinforceLoss``)."""


class ContractError(ValueError):
    """A component that does not meet its kind's contract (one line: section, component, what it lacks)."""


@runtime_checkable
class ActorContract(Protocol):
    """What an actor must offer: TensorDict keys in and out (``action``, ``action_log_prob``) and ``get_dist``."""

    in_keys: list[NestedKey]
    out_keys: list[NestedKey]

    def get_dist(self, tensordict: Any) -> torch.distributions.Distribution: ...

    def __call__(self, tensordict: Any) -> Any: ...


@runtime_checkable
class CriticContract(Protocol):
    """What a critic must offer: TensorDict keys in and out (``state_value``)."""

    in_keys: list[NestedKey]
    out_keys: list[NestedKey]

    def __call__(self, tensordict: Any) -> Any: ...


@runtime_checkable
class AdvantageContract(Protocol):
    """What an advantage module must offer: TensorDict keys in and out (``advantage``, ``value_target``)."""

    in_keys: list[NestedKey]
    out_keys: list[NestedKey]

    def __call__(self, tensordict: Any) -> Any: ...


@runtime_checkable
class LossContract(Protocol):
    """What a loss must offer: TensorDict keys in and its ``loss_*`` terms out."""

    in_keys: list[NestedKey]
    out_keys: list[NestedKey]

    def __call__(self, tensordict: Any) -> Any: ...


@runtime_checkable
class CollectorContract(Protocol):
    """What a collector must offer: batches by iteration, and ``shutdown``."""

    def __iter__(self): ...

    def shutdown(self) -> None: ...


_NEEDS = {
    "actor": "an actor needs in_keys, out_keys with 'action' and 'action_log_prob', and get_dist(tensordict) "
    "(e.g. torchrl.modules.ProbabilisticActor with return_log_prob=True, log_prob_key='action_log_prob')",
    "critic": "a critic needs in_keys and out_keys with 'state_value' (e.g. torchrl.modules.ValueOperator)",
    "advantage": "an advantage module needs in_keys and out_keys with 'advantage' and 'value_target' "
    "(e.g. torchrl.objectives.value.GAE)",
    "loss": "a loss needs in_keys, out_keys naming its loss_* terms, and forward(tensordict) -> TensorDict "
    "(e.g. a torchrl.objectives.LossModule)",
    "collector": "a collector needs __iter__ yielding batches and shutdown() (e.g. torchrl.collectors.Collector)",
    "optim": "an optimizer needs to be a torch.optim.Optimizer",
}


def _lacks(obj: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``obj`` does not have."""
    members = [m for m in protocol.__dict__.get("__annotations__", {})] + [
        m for m, v in vars(protocol).items() if callable(v) and not m.startswith("_")
    ]
    if "__call__" in vars(protocol):
        members.append("__call__")
    if "__iter__" in vars(protocol):
        members.append("__iter__")
    missing = []
    for m in dict.fromkeys(members):
        try:
            present = hasattr(obj, m)
        except Exception:  # noqa: BLE001 (a property that raises: the member is not usable)
            present = False
        if not present:
            missing.append("forward" if m == "__call__" else m)
    return missing


def _fail(section: str, name: str, obj: Any, what: str) -> ContractError:
    return ContractError(f"{section}: {name!r} ({type(obj).__name__}) {what}: {_NEEDS[section]}")


def _keys(keys: Iterable[NestedKey]) -> set[NestedKey]:
    return {k if isinstance(k, str) or len(k) > 1 else k[0] for k in keys}


def check_components(spec, actor, critic, advantage, loss) -> None:
    """Checks the built modules of ``spec`` against their contracts; raises a one-line
    :class:`ContractError` naming the section, the component and what it lacks."""
    names = {section: getattr(spec, section).name for section in ("env", "actor", "advantage", "loss", "optim")}
    for section, obj, protocol in (
        ("actor", actor, ActorContract),
        ("advantage", advantage, AdvantageContract),
        ("loss", loss, LossContract),
    ):
        lacking = _lacks(obj, protocol)
        if lacking:
            raise _fail(section, names[section], obj, f"lacks {', '.join(lacking)}")
    if critic is not None:
        lacking = _lacks(critic, CriticContract)
        if lacking:
            raise _fail("critic", spec.critic.name, critic, f"lacks {', '.join(lacking)}")
        if "state_value" not in _keys(critic.out_keys):
            raise _fail("critic", spec.critic.name, critic, f"writes {list(critic.out_keys)}, not 'state_value'")
    actor_out = _keys(actor.out_keys)
    for key in ("action", LOG_PROB_KEY):
        if key not in actor_out:
            raise _fail("actor", names["actor"], actor, f"writes {list(actor.out_keys)}, not {key!r}")
    advantage_out = _keys(advantage.out_keys)
    for key in ("advantage", "value_target"):
        if key not in advantage_out:
            raise _fail("advantage", names["advantage"], advantage, f"writes {list(advantage.out_keys)}, not {key!r}")
    terms = [k for k in loss.out_keys if isinstance(k, str) and k.startswith("loss_")]
    if not terms:
        raise _fail("loss", names["loss"], loss, f"names no loss_* term in its out_keys {list(loss.out_keys)}")
    if critic is not None and spec.train.value_steps > 1 and critic_term(loss) is None:
        raise ContractError(
            f"train.value_steps: loss {names['loss']!r} has no critic term ({' or '.join(CRITIC_TERMS)} in its "
            f"out_keys {list(loss.out_keys)}) for the extra critic steps: set value_steps: 1"
        )
    if spec.train.per_step_updates:
        why = per_step_unsupported(loss, advantage)
        if why is not None:
            raise ContractError(f"train.per_step_updates: {why}")


def check_optimizer(section: str, config, optim) -> None:
    """An optimizer's contract: a ``torch.optim.Optimizer`` (``section``: optim or critic_optim)."""
    if not isinstance(optim, torch.optim.Optimizer):
        raise ContractError(f"{section}: {config.name!r} returned {type(optim).__name__}: {_NEEDS['optim']}")


def check_collector(spec, collector) -> None:
    """The collector's contract (checked once it is built, before the first batch)."""
    lacking = _lacks(collector, CollectorContract)
    if lacking:
        raise _fail("collector", spec.collector.name, collector, f"lacks {', '.join(lacking)}")


def check_env(spec, env) -> None:
    """The env's contract: a TorchRL env with one batch dim whose steps carry the keys the
    trainer and the metrics read."""
    name = spec.env.name
    if not isinstance(env, EnvBase):
        raise ContractError(f"env: {name!r} returned {type(env).__name__}: an env must be a torchrl.envs.EnvBase")
    if len(env.batch_size) != 1:
        raise ContractError(
            f"env: {name!r} has batch_size {tuple(env.batch_size)}: the pipeline needs one batch dim (its envs)"
        )
    have = set(env.full_done_spec.keys(True, True)) | set(env.full_reward_spec.keys(True, True))
    have |= set(env.observation_spec.keys(True, True))
    needed = {
        "reward": "its reward",
        "done": "done flags",
        "terminated": "terminated flags",
        "episode_reward": "torchrl.envs.RewardSum()",
        "step_count": "torchrl.envs.StepCounter()",
    }
    missing = [f"{k} ({why})" for k, why in needed.items() if k not in have]
    if missing:
        raise ContractError(f"env: {name!r} does not write {', '.join(missing)}: add the transforms named")


def critic_term(loss) -> str | None:
    """The name of a loss's critic term (:data:`CRITIC_TERMS`), or ``None``."""
    return next((k for k in CRITIC_TERMS if k in loss.out_keys), None)


def critic_objective(loss):
    """``batch -> the loss's reduced critic term``: the loss's own ``critic_objective`` where it has
    one (pgtorchrl's ReinforceLoss: the critic term alone, without the actor's), else its whole
    forward's critic term (:func:`critic_term`)."""
    own = getattr(loss, "critic_objective", None)
    if callable(own):
        return own
    term = critic_term(loss)
    return lambda batch: loss(batch).get(term)


def per_step_unsupported(loss, advantage) -> str | None:
    """Why per-step updates cannot drive these components (``None`` when they can): they call
    the tensor-level methods of pgtorchrl's own loss and estimators."""
    if not isinstance(loss, ReinforceLoss):
        return f"needs pgtorchrl's loss 'reinforce' (got {type(loss).__name__})"
    if not isinstance(advantage, AdvantageEstimator):
        return (
            "needs one of pgtorchrl's advantages (full_return, reward_to_go, td_error, gae; got "
            f"{type(advantage).__name__})"
        )
    return None


def fixed_point_unsupported(p) -> str | None:
    """Why the fixed-point solver cannot run pipeline ``p`` (``None`` when it can)."""
    if p.spec.train.max_grad_norm is not None:
        return "clips gradients per step (train.max_grad_norm): a step's update is no longer alpha x its gradient"
    if p.loss.reduction != "sum":
        return "needs loss.reduction: sum (the per-step losses must add up to the batch's)"
    for section, optim in (("optim", p.actor_optim), ("critic_optim", p.critic_optim)):
        if optim is None:
            continue
        plain = type(optim) is torch.optim.SGD and all(
            g["momentum"] == 0 and g["weight_decay"] == 0 and not g["maximize"] for g in optim.param_groups
        )
        if not plain:
            return f"needs plain SGD ({section}: name: sgd, momentum 0, weight_decay 0)"
    why = not_on_tensors(p)
    if why is not None:
        return why
    net = categorical_logits_net(p.actor)  # not None: not_on_tensors checked it
    modules = ([net.module] if net is not None else []) + ([p.critic.module] if p.critic is not None else [])
    if not all(getattr(m, "independent_runs", False) for m in modules):
        return "needs modules with one parameter row per run (independent_runs: true)"
    return None


def not_on_tensors(p) -> str | None:
    """Why ``p``'s per-step losses cannot be computed on plain tensors (``None`` when they can):
    they need a categorical actor over a logits network and a critic that is one
    ``TensorDictModule``."""
    if categorical_logits_net(p.actor) is None:
        return "needs a categorical actor over a logits network"
    if p.critic is not None and not (isinstance(p.critic, TensorDictModule) and len(p.critic.out_keys) == 1):
        return "needs a critic that is one TensorDictModule"
    return None

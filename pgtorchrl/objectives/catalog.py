"""The advantage estimators, losses and optimizers a spec can name (``advantage:``, ``loss:``,
``optim:``, ``critic_optim:``), registered by name: pgtorchrl's own and TorchRL's (by class name,
with their constructors' keyword names).

Each factory's keyword-only parameters are the YAML fields of its section; its positional
parameters are wiring (the critic; the actor and critic; the parameters to optimize). The classes
are imported inside the factories: validating a spec reads these signatures without importing
torch (see :mod:`pgtorchrl.envs.catalog`).
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Annotated, Any, Iterable, Literal, Optional

from pydantic import Field, NonNegativeFloat, PositiveFloat

from pgtorchrl.config.registry import Registry, keyword_docs, keyword_section
from pgtorchrl.objectives.choices import CriticLossType
from pgtorchrl.objectives.value.options import ESTIMATORS, Estimator, Probability, option_docs, option_fields

if TYPE_CHECKING:
    import torch

__all__ = ["ADVANTAGES", "LOSSES", "OPTIMIZERS"]

ADVANTAGES = Registry("advantage", wiring=("critic",), base=("torch", "Module"))
LOSSES = Registry("loss", wiring=("actor", "critic"), base=("torch", "Module"))
OPTIMIZERS = Registry("optim", wiring=("params",), base=("torch", "Optimizer"))


# --- advantages ---------------------------------------------------------------------------------
# pgtorchrl's estimators: their fields, choices and the critic rule are written once, in
# pgtorchrl.objectives.value.options (torch-free), for the classes and the spec alike.
def _estimator(name: str, entry: Estimator):
    """The factory of estimator ``name``: ``advantages.<class>(critic, **fields)``, whose spec
    fields are the options class's fields."""

    def factory(critic, **fields):
        from pgtorchrl.objectives.value import advantages

        return getattr(advantages, entry.class_name)(critic, **fields)

    params = [inspect.Parameter("critic", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [
        inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        for field, annotation, default in option_fields(entry.options)
    ]
    factory.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # its spec fields
    factory.__doc__ = f"{entry.summary}\n\n{keyword_section(option_docs(entry.options))}"
    factory.__name__ = name
    return factory


for _name, _entry in ESTIMATORS.items():
    ADVANTAGES.register(_name)(_estimator(_name, _entry))


# --- TorchRL's value estimators (torchrl.objectives.value), by class name ----------------------------
def _needs_critic(kind: str, name: str, critic, argument: str) -> None:
    """TorchRL's estimators and losses take a critic as their ``argument`` (``value_network``, ``critic_network``)."""
    if critic is None:
        raise ValueError(f"{kind} {name!r} needs a critic (its {argument}): add a `critic:` section")


@ADVANTAGES.register("torchrl.GAE")
def torchrl_gae(critic, *, gamma: Probability = 0.99, lmbda: Probability = 0.95, average_gae: bool = False):
    """torchrl.objectives.value.GAE (value_network = the critic); average_gae standardizes the advantage."""
    from torchrl.objectives.value import GAE

    _needs_critic("advantage", "torchrl.GAE", critic, "value_network")
    return GAE(gamma=gamma, lmbda=lmbda, value_network=critic, average_gae=average_gae)


@ADVANTAGES.register("torchrl.TD0Estimator")
def torchrl_td0(critic, *, gamma: Probability = 0.99, average_rewards: bool = False):
    """torchrl.objectives.value.TD0Estimator: the one-step TD error r + gamma V(s') - V(s) (value_network = the critic)."""  # noqa: E501 (the summary `pgtorchrl list` prints)
    from torchrl.objectives.value import TD0Estimator

    _needs_critic("advantage", "torchrl.TD0Estimator", critic, "value_network")
    return TD0Estimator(gamma=gamma, value_network=critic, average_rewards=average_rewards)


@ADVANTAGES.register("torchrl.TDLambdaEstimator")
def torchrl_td_lambda(critic, *, gamma: Probability = 0.99, lmbda: Probability = 0.95, average_rewards: bool = False):
    """torchrl.objectives.value.TDLambdaEstimator: the TD(lambda) return minus V(s) (value_network = the critic)."""
    from torchrl.objectives.value import TDLambdaEstimator

    _needs_critic("advantage", "torchrl.TDLambdaEstimator", critic, "value_network")
    return TDLambdaEstimator(gamma=gamma, lmbda=lmbda, value_network=critic, average_rewards=average_rewards)


# --- loss ---------------------------------------------------------------------------------------
@LOSSES.register("reinforce")
def reinforce(
    actor,
    critic,
    *,
    entropy_coeff: NonNegativeFloat = 0.0,
    critic_coeff: NonNegativeFloat = 1.0,
    loss_critic_type: CriticLossType = "l2",
    reduction: Literal["mean", "sum"] = "mean",
):
    """pgtorchrl's ReinforceLoss: -mean(log pi(a|s) * advantage), critic regression, entropy bonus; critic optional.

    Keyword Args:
        entropy_coeff: Weight of the entropy bonus (0: no loss_entropy).
        critic_coeff: Weight of loss_critic in the summed loss.
        loss_critic_type: The critic's regression loss (l2, l1 or smooth_l1).
        reduction: Mean over the batch's steps, or sum (the textbook's per-episode sum)."""
    from pgtorchrl.objectives.reinforce import ReinforceLoss

    return ReinforceLoss(
        actor,
        critic,
        entropy_coeff=entropy_coeff,
        critic_coeff=critic_coeff,
        loss_critic_type=loss_critic_type,
        reduction=reduction,
    )


@LOSSES.register("torchrl.A2CLoss")
def torchrl_a2c(
    actor,
    critic,
    *,
    entropy_bonus: bool = True,
    entropy_coeff: NonNegativeFloat = 0.01,
    critic_coeff: NonNegativeFloat = 1.0,
    loss_critic_type: CriticLossType = "smooth_l1",
    reduction: Literal["mean", "sum"] = "mean",
    clip_value: Optional[PositiveFloat] = None,
):
    """torchrl.objectives.A2CLoss (loss_objective, loss_critic, loss_entropy); needs a critic."""
    from torchrl.objectives import A2CLoss

    _needs_critic("loss", "torchrl.A2CLoss", critic, "critic_network")
    return A2CLoss(
        actor,
        critic,
        entropy_bonus=entropy_bonus,
        entropy_coeff=entropy_coeff,
        critic_coeff=critic_coeff,
        loss_critic_type=loss_critic_type,
        reduction=reduction,
        clip_value=clip_value,
    )


@LOSSES.register("torchrl.ReinforceLoss")
def torchrl_reinforce(
    actor,
    critic,
    *,
    loss_critic_type: CriticLossType = "smooth_l1",
    reduction: Literal["mean", "sum"] = "mean",
    clip_value: Optional[PositiveFloat] = None,
):
    """torchrl.objectives.ReinforceLoss (loss_actor, loss_value); needs a critic, has no entropy term."""
    from torchrl.objectives import ReinforceLoss

    _needs_critic("loss", "torchrl.ReinforceLoss", critic, "critic_network")
    return ReinforceLoss(actor, critic, loss_critic_type=loss_critic_type, reduction=reduction, clip_value=clip_value)


def _ppo_fields(
    actor,
    critic,
    *,
    entropy_bonus: bool = True,
    entropy_coeff: NonNegativeFloat = 0.01,
    critic_coeff: NonNegativeFloat = 1.0,
    loss_critic_type: CriticLossType = "smooth_l1",
    normalize_advantage: bool = False,
    reduction: Literal["mean", "sum"] = "mean",
    clip_value: Optional[PositiveFloat] = None,
    functional: bool = True,
):
    """The spec fields TorchRL's PPO losses share (signature only: the keyword names of their constructors).

    Keyword Args:
        entropy_bonus: Add the entropy bonus (loss_entropy).
        entropy_coeff: Weight of the entropy bonus.
        critic_coeff: Weight of loss_critic in the summed loss.
        loss_critic_type: The critic's regression loss (l2, l1 or smooth_l1).
        normalize_advantage: Standardize the advantage over each minibatch.
        reduction: Mean or sum over the minibatch.
        clip_value: Clip the value prediction to within clip_value of the batch's old value
            (CleanRL's clipped value loss; null: not clipped).
        functional: False calls the actor and critic as they are instead of through TorchRL's
            functional parameters (the same losses; about 15% faster per minibatch on CPU here)."""


def _ppo(name: str, summary: str, path: str | None = None, functional: bool = True, **own):
    """The factory of loss ``name``: the class at ``path`` (``module.Class``; by default TorchRL's
    ``torchrl.objectives.<Class>`` for ``name`` ``torchrl.<Class>``), whose spec fields are
    :func:`_ppo_fields`' (``functional`` defaulting to ``functional``) plus ``own``
    (``name=(annotation, default)``); the loss reads the log-probability key pgtorchrl's actors write."""
    shared = inspect.signature(_ppo_fields)
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, annotation=t, default=d) for k, (t, d) in own.items()]
    params = [p.replace(default=functional) if p.name == "functional" else p for p in shared.parameters.values()]
    module, _, cls_name = (path or f"torchrl.objectives.{name.removeprefix('torchrl.')}").rpartition(".")

    def factory(actor, critic, **fields):
        from pgtorchrl.modules.models import LOG_PROB_KEY

        _needs_critic("loss", name, critic, "critic_network")
        loss = getattr(importlib.import_module(module), cls_name)(actor, critic, **fields)
        loss.set_keys(sample_log_prob=LOG_PROB_KEY)
        return loss

    signature = shared.replace(parameters=params[:2] + extra + params[2:])
    factory.__signature__ = signature  # type: ignore[attr-defined]  # its spec fields
    factory.__doc__ = f"{summary}\n\n{keyword_section(keyword_docs(inspect.getdoc(_ppo_fields)))}"
    return factory


LOSSES.register("torchrl.PPOLoss")(
    _ppo(
        "torchrl.PPOLoss",
        "torchrl.objectives.PPOLoss: the unclipped surrogate -mean(ratio * advantage) (NPG's and TRPO's objective).",
    )
)
CLIP_EPSILON = (
    Annotated[float, Field(gt=0.0, lt=1.0, description="The probability ratio clipped to [1 - eps, 1 + eps].")],
    0.2,
)
LOSSES.register("torchrl.ClipPPOLoss")(
    _ppo(
        "torchrl.ClipPPOLoss",
        "torchrl.objectives.ClipPPOLoss: PPO's clipped surrogate (train.epochs, train.minibatches, train.target_kl).",
        clip_epsilon=CLIP_EPSILON,
    )
)
LOSSES.register("ppo")(
    _ppo(
        "ppo",
        "pgtorchrl's ClipPPOLoss: TorchRL's clipped surrogate with a plain-tensor forward (speed only; same outputs);"
        " analytic_gradients: MLP networks' gradients by hand (speed only; autograd's up to float rounding).",
        path="pgtorchrl.objectives.ppo.ClipPPOLoss",
        functional=False,
        clip_epsilon=CLIP_EPSILON,
        analytic_gradients=(
            Annotated[bool, Field(description="MLP networks' gradients by hand (ppo_gradients); false: autograd's.")],
            True,
        ),
    )
)
LOSSES.register("torchrl.KLPENPPOLoss")(
    _ppo(
        "torchrl.KLPENPPOLoss",
        "torchrl.objectives.KLPENPPOLoss: PPO's adaptive KL-penalty surrogate.",
        dtarg=(PositiveFloat, 0.01),
        beta=(PositiveFloat, 1.0),
    )
)


# --- optimizers ---------------------------------------------------------------------------------
Betas = Annotated[list[Probability], Field(min_length=2, max_length=2)]


@OPTIMIZERS.register("adam")
def adam(
    params: Iterable["torch.nn.Parameter"],
    *,
    lr: PositiveFloat = 1.0e-3,
    betas: Betas = [0.9, 0.999],
    eps: PositiveFloat = 1.0e-8,
    weight_decay: NonNegativeFloat = 0.0,
    foreach: Optional[bool] = None,
    fused: Optional[bool] = None,
) -> Any:
    """torch.optim.Adam. fused: true updates every parameter in one kernel (on CPU about 3x faster
    than torch's default per-tensor loop for the small networks here; the same update up to rounding).

    Keyword Args:
        lr: The step size.
        betas: The decay rates of the gradient's first and second moment estimates.
        eps: Added to the second moment's square root (CleanRL's PPO: 1e-5).
        weight_decay: L2 penalty on the parameters.
        foreach: Torch's multi-tensor update (null: torch picks).
        fused: One kernel for every parameter (null: torch picks; true: the fastest here)."""
    import torch

    return torch.optim.Adam(
        params, lr=lr, betas=(betas[0], betas[1]), eps=eps, weight_decay=weight_decay, foreach=foreach, fused=fused
    )


@OPTIMIZERS.register("sgd")
def sgd(
    params: Iterable["torch.nn.Parameter"],
    *,
    lr: PositiveFloat = 1.0e-2,
    momentum: NonNegativeFloat = 0.0,
    weight_decay: NonNegativeFloat = 0.0,
) -> Any:
    """torch.optim.SGD (plain stochastic gradient ascent on the loss, as the textbook).

    Keyword Args:
        lr: The step size (the textbook's alpha).
        momentum: The momentum factor (0: plain SGD).
        weight_decay: L2 penalty on the parameters."""
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


@OPTIMIZERS.register("rmsprop")
def rmsprop(
    params: Iterable["torch.nn.Parameter"],
    *,
    lr: PositiveFloat = 1.0e-2,
    alpha: Probability = 0.99,
    eps: PositiveFloat = 1.0e-8,
) -> Any:
    """torch.optim.RMSprop.

    Keyword Args:
        lr: The step size.
        alpha: The decay rate of the squared gradients' running mean.
        eps: Added to its square root."""
    import torch

    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps)


@OPTIMIZERS.register("npg")
def npg(
    params: Iterable["torch.nn.Parameter"],
    *,
    max_kl: PositiveFloat = 0.01,
    damping: NonNegativeFloat = 0.1,
    cg_iters: Annotated[int, Field(ge=1, le=1000)] = 10,
) -> Any:
    """Natural policy gradient (Kakade 2001): a step of mean KL max_kl along F^-1 g (actor only).

    Keyword Args:
        max_kl: The step is scaled so that its quadratic estimate of the mean KL is max_kl.
        damping: Added to the Fisher matrix's diagonal (F + damping I) for conjugate gradient.
        cg_iters: Conjugate-gradient iterations to solve F x = g."""
    from pgtorchrl.objectives.trust_region import NaturalPolicyGradient

    return NaturalPolicyGradient(params, max_kl=max_kl, damping=damping, cg_iters=cg_iters)


@OPTIMIZERS.register("trpo")
def trpo(
    params: Iterable["torch.nn.Parameter"],
    *,
    max_kl: PositiveFloat = 0.01,
    damping: NonNegativeFloat = 0.1,
    cg_iters: Annotated[int, Field(ge=1, le=1000)] = 10,
    backtrack_coeff: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8,
    max_backtracks: Annotated[int, Field(ge=1, le=100)] = 10,
) -> Any:
    """TRPO (Schulman et al. 2015): the natural step, then a line search keeping KL <= max_kl (actor only).

    Keyword Args:
        max_kl: The trust region: the mean KL a step may reach.
        damping: Added to the Fisher matrix's diagonal (F + damping I) for conjugate gradient.
        cg_iters: Conjugate-gradient iterations to solve F x = g.
        backtrack_coeff: Each rejected step is shrunk by this factor.
        max_backtracks: At most this many shrinks; then the parameters are left unchanged."""
    from pgtorchrl.objectives.trust_region import TRPO

    return TRPO(
        params,
        max_kl=max_kl,
        damping=damping,
        cg_iters=cg_iters,
        backtrack_coeff=backtrack_coeff,
        max_backtracks=max_backtracks,
    )

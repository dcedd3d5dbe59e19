"""The options and rules of pgtorchrl's advantage estimators, each written once.

:mod:`pgtorchrl.objectives.value.advantages` (the TensorDict modules, which need torch) and the
spec layer (which validates a YAML file before torch is imported) both read this module:

- :data:`ESTIMATORS`: registry name -> class name, options, whether a critic is required;
- the option dataclasses (:class:`EstimatorOptions` and its extensions): the keyword arguments
  of the classes' constructors *and* the fields of the spec's ``advantage:`` section, with their
  types, ranges, choices (one ``Literal`` each) and defaults;
- :func:`critic_problem`: the one rule about the critic, with its one message, which the
  constructors raise and the spec reports at ``advantage.<field>``.

No torch here (pydantic only), so validating a spec stays cheap.
"""

from dataclasses import fields
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_type_hints

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

__all__ = [
    "Probability",
    "Truncation",
    "Baseline",
    "TRUNCATION_MODES",
    "BASELINES",
    "EstimatorOptions",
    "MonteCarloOptions",
    "GAEOptions",
    "Estimator",
    "ESTIMATORS",
    "option_docs",
    "option_fields",
    "validated",
    "critic_problem",
]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Truncation = Literal["bootstrap", "drop", "terminal"]
"""What a time-limit cut means: ``bootstrap`` continues the return with V(s_T) (Spinning Up's
``finish_path``), ``drop`` removes truncated episodes (whole-episode batches only), ``terminal``
treats the cut as a true end."""
Baseline = Literal["auto", "none", "mean", "critic"]
"""``none``; ``mean`` (the batch's mean weight); ``critic`` (V(s_t): REINFORCE with baseline);
``auto``: the critic when there is one."""
TRUNCATION_MODES = get_args(Truncation)
BASELINES = get_args(Baseline)

_OPTIONS = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


@dataclass(config=_OPTIONS, kw_only=True, frozen=True)
class EstimatorOptions:
    """Options every estimator takes."""

    gamma: Probability = 0.99
    """Discount factor."""
    normalize: bool = False
    """Standardize the advantage over the batch's valid steps."""
    truncation: Truncation = "bootstrap"
    """What a time-limit cut means: bootstrap continues the return with V(s_T) (needs a critic),
    drop removes truncated episodes, terminal treats the cut as a true end."""
    gamma_t_factor: bool = False
    """Multiply the advantage by gamma^t (Sutton & Barto's boxed algorithms)."""


@dataclass(config=_OPTIONS, kw_only=True, frozen=True)
class MonteCarloOptions(EstimatorOptions):
    """Options of the Monte Carlo return estimators (a return minus a state-only baseline)."""

    baseline: Baseline = "auto"
    """The state-only baseline subtracted from the return: none, mean (the batch's mean return),
    critic (V(s_t)), or auto (the critic when there is one)."""


@dataclass(config=_OPTIONS, kw_only=True, frozen=True)
class GAEOptions(EstimatorOptions):
    """Options of GAE(lambda)."""

    lmbda: Probability = 0.95
    """GAE's lambda: 1 is the Monte Carlo advantage, 0 the TD error."""


class Estimator(NamedTuple):
    """A registered estimator: its class in :mod:`~pgtorchrl.objectives.value.advantages`, its
    options, whether it needs a critic, and its one-line summary."""

    class_name: str
    options: type
    requires_critic: bool
    summary: str


#: Registry name -> estimator: its class, options, whether it needs a critic, and its summary.
ESTIMATORS: dict[str, Estimator] = {
    "full_return": Estimator(
        "FullReturn",
        MonteCarloOptions,
        False,
        "G(tau) for every step of the episode, minus a state-only baseline; whole-episode batches.",
    ),
    "reward_to_go": Estimator(
        "RewardToGo",
        MonteCarloOptions,
        False,
        "G_t minus a state-only baseline (none, batch mean, or V(s_t): REINFORCE with baseline).",
    ),
    "td_error": Estimator(
        "TDError", EstimatorOptions, True, "One-step TD error r + gamma V(s') - V(s) as advantage; needs a critic."
    ),
    "gae": Estimator(
        "GAE", GAEOptions, True, "GAE(lambda) with the critic as baseline (vanilla policy gradient); needs a critic."
    ),
}


def option_docs(options: type) -> dict[str, str]:
    """Each option's doc line (the docstring under it, in its class or a base), in declaration order.

    >>> option_docs(GAEOptions)["lmbda"]
    "GAE's lambda: 1 is the Monte Carlo advantage, 0 the TD error."
    """
    docs: dict[str, str] = {}
    for klass in reversed(options.__mro__):  # pydantic reads a class's own docstrings, not its bases'
        for name, info in getattr(klass, "__pydantic_fields__", {}).items():
            if info.description and name not in docs:
                docs[name] = " ".join(info.description.split())
    return {f.name: docs[f.name] for f in fields(options) if f.name in docs}


def option_fields(options: type) -> list[tuple[str, Any, Any]]:
    """``(name, annotation, default)`` of every option, in declaration order.

    >>> [name for name, _, _ in option_fields(GAEOptions)]
    ['gamma', 'normalize', 'truncation', 'gamma_t_factor', 'lmbda']
    """
    hints = get_type_hints(options, include_extras=True)
    return [(f.name, hints[f.name], f.default) for f in fields(options)]


def validated(options: type, owner: str, given: dict[str, Any]) -> Any:
    """``options(**given)``, or a one-line ``ValueError`` naming ``owner`` and the first bad option.

    >>> validated(GAEOptions, "GAE", {"lmbda": 1.5})
    Traceback (most recent call last):
    ...
    ValueError: GAE: lmbda: Input should be less than or equal to 1, got 1.5
    """
    try:
        return options(**given)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "options"
        raise ValueError(f"{owner}: {where}: {first['msg']}, got {first['input']!r}") from None


def critic_problem(name: str, options: Any, has_critic: bool) -> tuple[str, str] | None:
    """``(field, message)`` when estimator ``name`` with ``options`` cannot run without the critic
    it lacks, else ``None``. The one statement of the rule: the constructors raise it, the spec
    reports it at ``advantage.<field>`` before anything is built.

    >>> critic_problem("reward_to_go", MonteCarloOptions(truncation="terminal"), has_critic=False) is None
    True
    >>> critic_problem("gae", GAEOptions(), has_critic=False)[1]
    "'gae' needs a critic: add a `critic:` section or use 'reward_to_go'"
    """
    if has_critic:
        return None
    if ESTIMATORS[name].requires_critic:
        return "name", f"{name!r} needs a critic: add a `critic:` section or use 'reward_to_go'"
    if getattr(options, "baseline", None) == "critic":
        return "baseline", "'critic' needs a critic: add a `critic:` section or use 'mean' or 'none'"
    if options.truncation == "bootstrap":
        return "truncation", (
            "'bootstrap' needs a critic to value the cut state: add a `critic:` section, or choose "
            "'drop' (discard truncated episodes) or 'terminal' (treat the time limit as the end)"
        )
    return None

"""The ``tune:`` section: a hyperparameter search over spec fields (light to import: pydantic only).

A search space maps spec field paths, in the override syntax (``optim.lr``, ``advantage.lmbda``),
to one distribution each::

    tune:
      space:
        optim.lr: {log_uniform: [1.0e-4, 1.0e-2]}
        advantage.lmbda: {uniform: [0.9, 1.0]}
        train.value_steps: {int: [1, 10]}
        actor.activation: {categorical: [tanh, relu]}
      n_trials: 30

:mod:`pgtorchrl.experiments.tune` runs the study (Optuna's TPE sampler, pruning at each evaluation)
with a parent MLflow run and one child run per trial.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, Field, model_validator

from pgtorchrl.config.registry import DOCUMENTED, STRICT, did_you_mean, shown

__all__ = ["Dimension", "TuneConfig", "FRAMES_TO_TARGET", "DIMENSION_KINDS"]

FRAMES_TO_TARGET = "frames_to_target"
"""The objective "env frames until ``eval/return_mean`` first reaches ``eval.target_return``"
(minimized; a trial that never reaches it scores ``train.total_frames``)."""

DIMENSION_KINDS = ("log_uniform", "uniform", "int", "categorical")
_FORMS = "{log_uniform: [low, high]}, {uniform: [low, high]}, {int: [low, high]} or {categorical: [a, b, ...]}"


class Dimension(BaseModel):
    """One searched field: ``kind`` (one of :data:`DIMENSION_KINDS`) and its ``values``
    (``[low, high]``, or the categorical choices). Written in YAML as ``{kind: values}``."""

    model_config = STRICT

    kind: Literal["log_uniform", "uniform", "int", "categorical"]
    values: Annotated[list[Any], Field(min_length=1, max_length=1000)]

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"kind", "values"}:
            return data
        if not isinstance(data, dict) or len(data) != 1:
            raise ValueError(f"write one of {_FORMS}, got {shown(data)}")
        kind, values = next(iter(data.items()))
        if kind not in DIMENSION_KINDS:
            raise ValueError(
                f"unknown distribution {shown(kind)}{did_you_mean(kind, DIMENSION_KINDS)}: write one of {_FORMS}"
            )
        return {"kind": kind, "values": values}

    @model_validator(mode="after")
    def _bounds(self) -> "Dimension":
        if self.kind == "categorical":
            if len({repr(v) for v in self.values}) != len(self.values):
                raise ValueError(f"categorical: the choices repeat: {shown(self.values)}")
            return self
        numbers = self.values
        wanted = int if self.kind == "int" else (int, float)
        if len(numbers) != 2 or not all(isinstance(v, wanted) and not isinstance(v, bool) for v in numbers):
            what = "two integers" if self.kind == "int" else "two numbers"
            raise ValueError(f"{self.kind}: write [low, high] with {what}, got {shown(numbers)}")
        low, high = numbers
        if not low < high:
            raise ValueError(f"{self.kind}: low must be below high, got [{low}, {high}]")
        if self.kind == "log_uniform" and low <= 0:
            raise ValueError(f"log_uniform: low must be positive, got {low}")
        return self

    def candidates(self) -> list[Any]:
        """The values that validating the space tries in the spec: both bounds, or every choice."""
        return list(self.values)

    @property
    def _as_json(self) -> bool:
        """Optuna's categorical choices are None, bools, numbers or strings: lists (``hidden_sizes``)
        and mappings travel as their JSON text."""
        return self.kind == "categorical" and any(isinstance(v, (list, dict)) for v in self.values)

    def decode(self, stored: Any) -> Any:
        """The spec value of a parameter as Optuna stores it."""
        return json.loads(stored) if self._as_json else stored

    def distribution(self):
        """This dimension as an Optuna distribution (what ``study.ask`` draws from)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution([json.dumps(v) for v in self.values] if self._as_json else self.values)
        if self.kind == "int":
            return IntDistribution(*self.values)
        return FloatDistribution(float(self.values[0]), float(self.values[1]), log=self.kind == "log_uniform")


class TuneConfig(BaseModel):
    """A hyperparameter study over this spec (run by the same command; ``tune.n_trials=...`` overrides)."""

    model_config = DOCUMENTED

    space: Annotated[dict[str, Dimension], Field(min_length=1, max_length=64)]
    """``{key.path: {log_uniform|uniform|int|categorical: ...}}``: the spec fields to search."""
    n_trials: Annotated[int, Field(ge=1, le=10_000)] = 20
    """Trials the study holds when done: a rerun of the command continues the study up to this many
    (finished and pruned trials count; failed or interrupted ones do not)."""
    seeds: Optional[Annotated[list[Annotated[int, Field(ge=0, lt=2**32)]], Field(min_length=1, max_length=100)]] = None
    """The seeds each trial trains (the objective is their mean; ``null``: the spec's ``seed``)."""
    metric: str = "eval/return_mean"
    """The objective: a metric's last value in the training run (default ``eval/return_mean``), or
    ``frames_to_target``: env frames until ``eval.target_return`` is first reached."""
    direction: Optional[Literal["maximize", "minimize"]] = None
    """``null``: minimize for ``frames_to_target``, maximize otherwise."""
    sampler_seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    """Seed of Optuna's TPE sampler: the same seed gives the same trial parameters (one worker)."""
    startup_trials: Annotated[int, Field(ge=0, le=10_000)] = 10
    """Random trials before TPE models the results."""
    prune_after_trials: Annotated[int, Field(ge=0, le=10_000)] = 5
    """The median pruner prunes only once this many trials have finished."""
    pruner: Literal["none", "median", "hyperband"] = "median"
    """Stop unpromising trials at an evaluation (needs ``eval.every_frames``): ``median`` (below the
    median of earlier trials at the same frame count) or ``hyperband``; ``none`` never prunes."""
    backend: Literal["local", "ray"] = "local"
    """``local``: trials in this process (``workers: 1``) or in local worker processes; ``ray``:
    each worker a Ray task on a local Ray or the cluster at ``address``."""
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    """Trials run side by side (each on one thread: up to one per core)."""
    address: Optional[str] = None
    """With ``backend: ray``: an existing cluster (``auto``, ``ray://HOST:10001``); ``null`` starts a local Ray."""
    storage: Optional[str] = None
    """Optuna's RDB storage URL; ``null``: ``sqlite:///mlruns/optuna.db`` (a shared database such as
    ``postgresql://...`` when workers run on several machines)."""
    study_name: Optional[Annotated[str, Field(min_length=1, max_length=250)]] = None
    """The study's name in the storage (``null``: the spec's experiment name)."""

    @property
    def resolved_direction(self) -> str:
        if self.direction is not None:
            return self.direction
        return "minimize" if self.metric == FRAMES_TO_TARGET else "maximize"

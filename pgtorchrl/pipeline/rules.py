"""The rules that tie a spec's sections together (GAE needs a critic, NPG steps the actor only,
a Ray batch splits over its workers ...), as a table: each rule is one function of the spec that
returns the key path it blames and the one-line message, or ``None``. :class:`~pgtorchrl.pipeline.schema.Spec`
applies them in table order once every section is valid on its own, and reports the first that
fails as ``FILE: key.path: message``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Optional

from pgtorchrl.collectors.catalog import RAY_WORKERS
from pgtorchrl.modules.catalog import RECURRENT_CELLS
from pgtorchrl.objectives.value.options import ESTIMATORS, critic_problem
from pgtorchrl.pipeline.search_space import FRAMES_TO_TARGET

if TYPE_CHECKING:
    from pgtorchrl.pipeline.schema import Spec, SweepConfig

__all__ = ["CrossSectionError", "RULES", "first_problem", "TRUST_REGION_OPTIMIZERS", "MAX_SWEEP_RUNS"]

TRUST_REGION_OPTIMIZERS = ("npg", "trpo")
"""Optimizers that take the actor's whole step from the KL geometry (one step per batch)."""
MAX_SWEEP_RUNS = 10_000
"""A sweep of more combinations than this is refused, counted before anything is expanded."""

Problem = Optional[tuple[str, str]]
"""``(key.path, message)`` where a rule fails, ``None`` where it holds."""


class CrossSectionError(ValueError):
    """A rule of :data:`RULES` that a spec breaks: the key path it blames and the message."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def whole_episodes(spec: Spec) -> bool:
    """Whether the spec's collector yields complete episodes (one per row)."""
    return spec.collector.name == "episodes" or getattr(spec.collector, "trajs_per_batch", None) is not None


# --- advantages and batches -----------------------------------------------------------------------
def estimator_needs(spec: Spec) -> Problem:
    """pgtorchrl's estimators state which of their options need a critic (written once, in their options)."""
    adv = spec.advantage
    if adv.name in ESTIMATORS:
        problem = critic_problem(adv.name, adv, spec.critic is not None)
        if problem is not None:
            return f"advantage.{problem[0]}", problem[1]
    return None


def fragments_need_a_bootstrap(spec: Spec) -> Problem:
    """A fixed-frame batch cuts episodes: only a critic can bootstrap their ends."""
    if whole_episodes(spec):
        return None
    adv = spec.advantage
    truncation = getattr(adv, "truncation", None)  # pgtorchrl's estimators; TorchRL's always bootstrap
    if adv.name == "full_return":
        why = "'full_return' weighs each step by its whole episode's return"
    elif truncation == "drop":
        why = "truncation 'drop' discards whole episodes"
    elif spec.critic is None:
        why = "without a critic, a batch-end fragment cannot be bootstrapped"
    else:
        return None
    return "collector", f"{why}: use whole-episode batches (collector.trajs_per_batch, or the 'episodes' collector)"


# --- optimizers ---------------------------------------------------------------------------------
def trust_region_critic_optimizer(spec: Spec) -> Problem:
    if spec.optim.name in TRUST_REGION_OPTIMIZERS and spec.critic is not None and spec.critic_optim is None:
        return "critic_optim", (
            f"optim {spec.optim.name!r} steps the actor only: name the critic's "
            f"own optimizer here, e.g. {{name: adam, lr: 1.0e-3}}"
        )
    return None


def trust_region_one_step(spec: Spec) -> Problem:
    train = spec.train
    if spec.optim.name in TRUST_REGION_OPTIMIZERS and (
        train.epochs > 1 or train.minibatches > 1 or train.per_step_updates
    ):
        return "train", (
            f"optim {spec.optim.name!r} takes one trust-region step per batch: "
            f"set epochs: 1, minibatches: 1, per_step_updates: false"
        )
    return None


def anneal_lr_needs_rates(spec: Spec) -> Problem:
    if not spec.train.anneal_lr:
        return None
    for section in ("optim", "critic_optim"):
        config = getattr(spec, section)
        if config is not None and config.name not in TRUST_REGION_OPTIMIZERS and not hasattr(config, "lr"):
            return "train.anneal_lr", f"{section} {config.name!r} has no lr to anneal: set anneal_lr: false"
    return None


def critic_gradient_optimizer(spec: Spec) -> Problem:
    if spec.critic_optim is not None and spec.critic_optim.name in TRUST_REGION_OPTIMIZERS:
        return "critic_optim.name", (
            f"{spec.critic_optim.name!r} steps a policy: give the critic a gradient optimizer (adam, sgd, rmsprop)"
        )
    return None


# --- the training loop --------------------------------------------------------------------------
def target_kl_needs_epochs(spec: Spec) -> Problem:
    if spec.train.target_kl is not None and spec.train.epochs == 1:
        return "train.target_kl", "stops a batch's passes early: use it with epochs > 1"
    return None


def per_step_one_pass(spec: Spec) -> Problem:
    if spec.train.per_step_updates and (spec.train.epochs > 1 or spec.train.minibatches > 1):
        return "train.per_step_updates", "updates at every time step: set epochs: 1, minibatches: 1"
    return None


def critic_optimizer_needs_a_critic(spec: Spec) -> Problem:
    if spec.critic_optim is not None and spec.critic is None:
        return "critic_optim", "there is no critic to optimize: add a `critic:` section or remove this one"
    return None


def value_steps_need_a_critic(spec: Spec) -> Problem:
    if spec.train.value_steps > 1 and spec.critic is None:
        return "train.value_steps", "value steps need a critic: set 1 or add a `critic:` section"
    return None


def per_step_needs_episodes(spec: Spec) -> Problem:
    if spec.train.per_step_updates and not whole_episodes(spec):
        return "train.per_step_updates", "needs whole-episode batches: use the 'episodes' collector"
    return None


def solver_needs_per_step(spec: Spec) -> Problem:
    if spec.train.per_step_solver != "auto" and not spec.train.per_step_updates:
        return "train.per_step_solver", "only with train.per_step_updates: true (or leave it at auto)"
    return None


def per_step_one_critic_step(spec: Spec) -> Problem:
    if spec.train.per_step_updates and spec.train.value_steps > 1:
        return "train.value_steps", "per-step updates take one critic step per time step: set 1"
    return None


# --- sweeps and studies -------------------------------------------------------------------------
def sweep_lengths(sweep: SweepConfig) -> list[int]:
    """The length of each list of values a sweep varies."""
    return [len(v) for v in sweep.values.values()]


def sweep_count(sweep: SweepConfig) -> int:
    """How many combinations a sweep expands to (counted, not expanded)."""
    lengths = sweep_lengths(sweep)
    return max(lengths) if sweep.mode == "zip" else math.prod(lengths)


def sweep_size(spec: Spec) -> Problem:
    count = sweep_count(spec.sweep) if spec.sweep is not None else 0
    if spec.sweep is not None and count > MAX_SWEEP_RUNS:
        lengths = sweep_lengths(spec.sweep)
        return "sweep.values", (
            f"{count} combinations ({' x '.join(map(str, lengths))}) is more than the "
            f"{MAX_SWEEP_RUNS} runs a sweep may start: use fewer values, or mode: zip"
        )
    return None


def sweep_zip_lengths(spec: Spec) -> Problem:
    if spec.sweep is not None and spec.sweep.mode == "zip" and len(set(sweep_lengths(spec.sweep))) > 1:
        return (
            "sweep.values",
            f"mode 'zip' needs lists of one length, got lengths {sorted(set(sweep_lengths(spec.sweep)))}",
        )
    return None


def sweep_labels(spec: Spec) -> Problem:
    if spec.sweep is not None and spec.sweep.labels is not None and len(spec.sweep.labels) != sweep_count(spec.sweep):
        return "sweep.labels", f"{len(spec.sweep.labels)} labels for {sweep_count(spec.sweep)} combinations"
    return None


def sweep_address(spec: Spec) -> Problem:
    if spec.sweep is not None and spec.sweep.address is not None and spec.sweep.backend != "ray":
        return "sweep.address", "only with backend: ray (backend 'local' runs on this machine)"
    return None


def tune_or_sweep(spec: Spec) -> Problem:
    if spec.tune is not None and spec.sweep is not None:
        return "tune", "a spec has a sweep: or a tune: section, not both (the study picks its own values)"
    return None


def tune_metric_measured(spec: Spec) -> Problem:
    tune, evaluation = spec.tune, spec.eval
    if tune is None:
        return None
    if tune.metric == FRAMES_TO_TARGET and (evaluation.target_return is None or evaluation.episodes == 0):
        return "tune.metric", f"{FRAMES_TO_TARGET!r} needs eval.target_return and eval.episodes > 0"
    if tune.metric.startswith("eval/") and evaluation.episodes == 0:
        return "tune.metric", f"{tune.metric!r} needs evaluations: set eval.episodes > 0"
    return None


def tune_pruner_evaluates(spec: Spec) -> Problem:
    tune = spec.tune
    if tune is not None and tune.pruner != "none" and (spec.eval.every_frames is None or spec.eval.episodes == 0):
        return "tune.pruner", (
            "prunes at evaluations during training: set eval.every_frames (and eval.episodes > 0), or pruner: none"
        )
    return None


def tune_address(spec: Spec) -> Problem:
    if spec.tune is not None and spec.tune.address is not None and spec.tune.backend != "ray":
        return "tune.address", "only with backend: ray (backend 'local' runs on this machine)"
    return None


# --- collection ---------------------------------------------------------------------------------
def collector_backend(spec: Spec) -> str | None:
    """``direct`` or ``ray`` for TorchRL's Collector (``ray``: sync on Ray), else ``None``."""
    return "ray" if spec.collector.name == "ray" else getattr(spec.collector, "backend", None)


def direct_has_no_ray_options(spec: Spec) -> Problem:
    if collector_backend(spec) == "direct":
        for field in ("num_collectors", "address"):
            if getattr(spec.collector, field) is not None:
                return f"collector.{field}", "only with backend: ray (backend 'direct' collects in this process)"
    return None


def ray_fixed_frames(spec: Spec) -> Problem:
    if collector_backend(spec) == "ray" and getattr(spec.collector, "trajs_per_batch", None) is not None:
        return "collector.trajs_per_batch", "backend 'ray' yields fixed-frame batches: use frames_per_batch"
    return None


def ray_on_cpu(spec: Spec) -> Problem:
    if collector_backend(spec) == "ray" and spec.device != "cpu":
        return "device", "Ray workers collect on CPU: set device: cpu with a Ray collector"
    return None


def ray_batch_splits(spec: Spec) -> Problem:
    collector = spec.collector
    if collector_backend(spec) != "ray":
        return None
    num_envs = getattr(spec.env, "num_envs", 1)  # a plugin env may fix its own batch
    workers = collector.num_collectors or RAY_WORKERS
    if collector.frames_per_batch % (workers * num_envs):
        return "collector.frames_per_batch", (
            f"{collector.frames_per_batch} does not split evenly over {workers} Ray "
            f"workers of env.num_envs={num_envs} envs: use a multiple of "
            f"{workers * num_envs}"
        )
    return None


def local_batch_splits(spec: Spec) -> Problem:
    collector = spec.collector
    num_envs = getattr(spec.env, "num_envs", 1)
    local = collector.name == "native" or collector_backend(spec) == "direct"
    if local and collector.frames_per_batch % num_envs:
        return (
            "collector.frames_per_batch",
            f"{collector.frames_per_batch} is not a multiple of env.num_envs={num_envs}",
        )
    return None


# --- policies with memory (pgtorchrl.modules.recurrent) ------------------------------------------
def recurrent(spec: Spec) -> bool:
    """Whether the spec's actor or critic has memory (trained on sequences)."""
    return spec.actor.name in RECURRENT_CELLS or (spec.critic is not None and spec.critic.name in RECURRENT_CELLS)


def sequences_need_memory(spec: Spec) -> Problem:
    if spec.train.sequence_length is not None and not recurrent(spec):
        cells = ", ".join(RECURRENT_CELLS)
        return "train.sequence_length", f"only recurrent actors and critics ({cells}) train on sequences"
    return None


def memory_needs_fixed_frames(spec: Spec) -> Problem:
    """A recurrent network trains on env rows in time order, cut at fixed frames (TorchRL's
    collector, whose batches carry the hidden states across batches)."""
    if not recurrent(spec):
        return None
    if spec.collector.name not in ("sync", "ray") or whole_episodes(spec):
        return "collector", (
            f"collector {spec.collector.name!r}"
            + (" with trajs_per_batch" if whole_episodes(spec) and spec.collector.name != "episodes" else "")
            + ": recurrent actors and critics train on fixed-frame batches: "
            "use collector sync (or ray) with frames_per_batch"
        )
    if spec.train.per_step_updates:
        return "train.per_step_updates", "recurrent actors and critics train on sequences, not per step: set false"
    if getattr(spec.critic, "share_encoder", False) and spec.actor.name in RECURRENT_CELLS:
        return "critic.share_encoder", (
            "a recurrent actor's trunk is not shared: give the critic its own (critic: {name: lstm})"
        )
    return None


def sequences_split_rows(spec: Spec) -> Problem:
    length, collector = spec.train.sequence_length, spec.collector
    if length is None or collector_backend(spec) != "direct":
        return None
    steps = collector.frames_per_batch // getattr(spec.env, "num_envs", 1)
    if steps % length:
        return "train.sequence_length", (
            f"{length} does not divide the {steps} steps per env of a batch (collector.frames_per_batch / env.num_envs)"
        )
    return None


def registering_needs_models_and_evaluation(spec: Spec) -> Problem:
    if spec.tracking.register_model is None:
        return None
    if not spec.tracking.log_models:
        return "tracking.register_model", "registers the run's MLflow Model: set tracking.log_models: true"
    if spec.eval.episodes == 0:
        return "tracking.register_model", "the champion is chosen by its final evaluation: set eval.episodes >= 1"
    return None


RULES: tuple[Callable[[Spec], Problem], ...] = (
    estimator_needs,
    fragments_need_a_bootstrap,
    trust_region_critic_optimizer,
    trust_region_one_step,
    critic_gradient_optimizer,
    anneal_lr_needs_rates,
    target_kl_needs_epochs,
    per_step_one_pass,
    critic_optimizer_needs_a_critic,
    value_steps_need_a_critic,
    per_step_needs_episodes,
    solver_needs_per_step,
    per_step_one_critic_step,
    sweep_size,
    sweep_zip_lengths,
    sweep_labels,
    sweep_address,
    tune_or_sweep,
    tune_metric_measured,
    tune_pruner_evaluates,
    tune_address,
    direct_has_no_ray_options,
    ray_fixed_frames,
    ray_on_cpu,
    ray_batch_splits,
    local_batch_splits,
    sequences_need_memory,
    memory_needs_fixed_frames,
    sequences_split_rows,
    registering_needs_models_and_evaluation,
)
"""Every cross-section rule, in the order they are checked (the first that fails is reported)."""


def first_problem(spec: Spec) -> Problem:
    """The first rule of :data:`RULES` that ``spec`` breaks, or ``None``."""
    for rule in RULES:
        problem = rule(spec)
        if problem is not None:
            return problem
    return None

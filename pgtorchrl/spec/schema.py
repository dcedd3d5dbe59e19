"""The pipeline spec: YAML -> one validated, typed :class:`Spec`, or a one-line :class:`SpecError`.

Everything is checked before anything is built or tracked: YAML syntax, unknown keys (with the
nearest known key), types (strict: no string passes as a number), component names (with the
nearest registered name), value ranges, and the cross-section rules (GAE needs a critic ...).
"""
from __future__ import annotations

import copy
import math
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import AfterValidator, BaseModel, Field, PositiveFloat, PositiveInt, ValidationError, create_model, model_validator

from pgtorchrl.objectives.value.options import ESTIMATORS, critic_problem
from pgtorchrl.spec.components import RAY_WORKERS, REGISTRIES
from pgtorchrl.spec.registry import STRICT, Registry, did_you_mean, shown
from pgtorchrl.spec.search_space import FRAMES_TO_TARGET, TuneConfig

__all__ = ["Spec", "SpecError", "in_memory_store", "load_spec", "parse_spec", "apply_overrides", "flatten", "expand_sweep", "read_spec_text"]


class SpecError(ValueError):
    """A spec problem, rendered as one line: ``FILE: key.path: what is wrong and how to fix it``."""


PLUGIN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
TRUST_REGION_OPTIMIZERS = ("npg", "trpo")
"""Optimizers that take the actor's whole step from the KL geometry (one step per batch)."""
MAX_SPEC_BYTES = 1_000_000
"""A spec file larger than this is refused before it is read (no pipeline spec comes near)."""
MAX_SPEC_VALUES = 100_000
"""A spec whose YAML expands to more values than this (anchors and aliases count once per use)
is refused: a nested alias "bomb" would otherwise take minutes to walk."""
MAX_SWEEP_RUNS = 10_000
"""A sweep of more combinations than this is refused, counted before anything is expanded."""
def _printable(name: str) -> str:
    if not name.isprintable():
        raise ValueError("must be printable text: no control characters (NUL, newline, tab ...)")
    return name


#: Experiment and run names: printable, and short enough for MLflow's stores.
Name = Annotated[str, Field(min_length=1, max_length=250), AfterValidator(_printable)]


def _section(kind: str):
    """The discriminated union of every registered component of one section, keyed by ``name``."""
    return REGISTRIES[kind].spec_type()


class StrictModel(BaseModel):
    model_config = STRICT


class TrainConfig(StrictModel):
    """The training loop (one collect -> advantage -> loss -> update cycle per batch)."""

    total_frames: Annotated[int, Field(gt=0, le=10**12)]
    """Env frames to collect in all (the x axis of every metric)."""
    value_steps: Annotated[int, Field(ge=1, le=1000)] = 1
    """Critic gradient steps per batch; the first is taken jointly with the actor (Spinning Up: 80)."""
    max_grad_norm: Optional[Annotated[float, Field(gt=0)]] = None
    """Clip the actor's and critic's gradient norms to this value (``null``: no clipping)."""
    iterations: Optional[Annotated[int, Field(gt=0, le=10**9)]] = None
    """Stop after this many updates (batches) even if frames remain (``null``: frames only)."""
    epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    """Passes over each batch (PPO: 10); each pass is ``minibatches`` gradient steps."""
    minibatches: Annotated[int, Field(ge=1, le=10**6)] = 1
    """Shuffled minibatches per pass (PPO: 32); 1 and ``epochs: 1`` is one step on the whole batch."""
    target_kl: Optional[PositiveFloat] = None
    """Stop a batch's passes once ``train/approx_kl`` from the collecting policy exceeds this
    (``null``: always ``epochs`` passes)."""
    per_step_updates: bool = False
    """Sutton & Barto's boxed algorithms: after each batch of whole episodes, one optimizer
    step per time step t = 0, 1, ... (all episodes' step t at once), each with the weights the
    previous one left, instead of one step on the whole batch."""
    per_step_solver: Literal["auto", "sequential", "fixed_point"] = "auto"
    """How per-step updates are computed (:mod:`pgtorchrl.trainers.per_step`): ``sequential`` (the loop
    as written), ``fixed_point`` (the same recurrence solved for all steps at once: plain SGD,
    ``loss.reduction: sum``, one parameter row per run) or ``auto`` (fixed_point where it applies)."""


class EvalConfig(StrictModel):
    """Evaluation of the deterministic policy (the mode of pi)."""

    every_frames: Optional[PositiveInt] = None
    """Evaluate every this many env frames (``null``: only at the end)."""
    episodes: Annotated[int, Field(ge=0, le=10000)] = 10
    """Episodes per evaluation, run side by side in one batched env (0: no evaluation at all)."""
    target_return: Optional[float] = None
    """Stop training once ``eval/return_mean`` reaches this (``null``: never stop early)."""


def in_memory_store(uri: str) -> bool:
    """Whether ``uri`` names an in-memory SQLite database (every run in it vanishes with the process).

    >>> [in_memory_store(u) for u in ("sqlite://", "sqlite:///:memory:", "sqlite:///mlruns/mlflow.db")]
    [True, True, False]
    """
    return uri.startswith("sqlite:") and (uri.rstrip("/") == "sqlite:" or ":memory:" in uri)


def _stored(uri: str | None) -> str | None:
    if uri is not None and in_memory_store(uri):
        raise ValueError("an in-memory SQLite store loses the run when the process ends: use sqlite:///mlruns/mlflow.db")
    return uri


class TrackingConfig(StrictModel):
    """MLflow tracking."""

    tracking_uri: Annotated[Optional[str], AfterValidator(_stored)] = None
    """Tracking store; ``null`` uses $MLFLOW_TRACKING_URI or ``sqlite:///mlruns/mlflow.db``."""
    run_name: Optional[Name] = None
    """MLflow run name (``null``: MLflow picks one)."""
    log_models: bool = True
    """Log the final actor/critic weights as artifacts."""
    checkpoint_every_frames: Optional[Annotated[int, Field(ge=1)]] = 50_000
    """Log a checkpoint (``checkpoints/frames_N.pt``: weights, optimizers, RNG and env state,
    progress) every this many frames and at the end; ``pgtorchrl resume RUN_ID`` continues
    from the newest. ``null``: only at the end."""
    curve_x: Literal["frames", "iteration"] = "frames"
    """x axis of the learning-curve plot (``iteration``: one episode per env per iteration
    with the ``episodes`` collector, as the textbook's figures)."""
    reference_return: Optional[float] = None
    """A dashed horizontal line on the learning-curve plot (e.g. the optimal value)."""
    reference_label: str = "reference"
    """Its legend label."""
    tags: Annotated[dict[str, Annotated[str, Field(max_length=5000)]], Field(max_length=100)] = {}
    """Extra MLflow run tags (``mlflow.parentRunId: RUN_ID`` makes the run a child of that run)."""


class SweepConfig(StrictModel):
    """Runs the spec once per combination of values, each as a child MLflow run of one parent."""

    values: Annotated[dict[str, Annotated[list[Any], Field(min_length=1, max_length=1000)]], Field(min_length=1)]
    """``{key.path: [value, ...]}``: the spec fields to vary (values typed as in the file)."""
    mode: Literal["grid", "zip"] = "grid"
    """``grid``: every combination; ``zip``: the i-th value of every list together."""
    labels: Optional[list[str]] = None
    """A legend label per combination (default: ``key=value`` pairs)."""
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    """Child runs trained side by side (each on one thread: use up to one per core); with
    ``backend: local``, 1 trains them one after another in this process, more in local processes."""
    backend: Literal["local", "ray"] = "local"
    """``local``: this machine's processes; ``ray``: each child run a Ray task, ``workers`` at a time,
    on a local Ray or the cluster at ``address``."""
    address: Optional[str] = None
    """With ``backend: ray``: an existing cluster (``auto``, ``ray://HOST:10001``); ``null`` starts a local Ray."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``sweep: {optim.lr: [1.0e-3, 3.0e-3]}`` means ``sweep: {values: {optim.lr: [...]}}``."""
        if isinstance(data, dict) and data and not set(cls.model_fields) & data.keys():
            return {"values": data}
        return data


class Spec(StrictModel):
    """A whole pipeline; see ``pipelines/vpg_cartpole.yaml`` for a commented example."""

    experiment: Name
    plugins: list[Annotated[str, Field(pattern=PLUGIN_PATTERN)]] = []
    """Python modules imported before the spec is validated: they may register components
    (``@ACTORS.register("my_actor")``), and only their factories may be named as
    ``module:function``. A spec without ``plugins`` runs no code but pgtorchrl's."""
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    device: Literal["cpu", "cuda"] = "cpu"
    env: _section("env")
    actor: _section("actor")
    critic: Optional[_section("critic")] = None
    collector: _section("collector")
    advantage: _section("advantage")
    loss: _section("loss")
    optim: _section("optim")
    critic_optim: Optional[_section("critic_optim")] = None
    train: TrainConfig
    eval: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()
    sweep: Optional[SweepConfig] = None
    tune: Optional[TuneConfig] = None

    @model_validator(mode="before")
    @classmethod
    def _default_collector(cls, data: Any) -> Any:
        """A ``collector:`` without a ``name`` is TorchRL's ``Collector`` (``sync``), so
        ``collector: {backend: ray, num_collectors: 4}`` reads as TorchRL's own call."""
        section = data.get("collector") if isinstance(data, dict) else None
        if isinstance(section, dict) and "name" not in section:
            data = {**data, "collector": {"name": "sync", **section}}
        return data

    @property
    def whole_episodes(self) -> bool:
        """Whether the collector yields complete episodes (one per row)."""
        return self.collector.name == "episodes" or getattr(self.collector, "trajs_per_batch", None) is not None

    @model_validator(mode="after")
    def _cross_section_rules(self) -> "Spec":
        adv = self.advantage
        truncation = getattr(adv, "truncation", None)  # pgtorchrl's estimators; TorchRL's always bootstrap
        if adv.name in ESTIMATORS:
            problem = critic_problem(adv.name, adv, self.critic is not None)
            if problem is not None:
                raise _CrossError(f"advantage.{problem[0]}", problem[1])
        if not self.whole_episodes:
            if adv.name == "full_return" or truncation == "drop" or self.critic is None:
                why = (
                    "'full_return' weighs each step by its whole episode's return"
                    if adv.name == "full_return"
                    else "truncation 'drop' discards whole episodes"
                    if truncation == "drop"
                    else "without a critic, a batch-end fragment cannot be bootstrapped"
                )
                raise _CrossError(
                    "collector",
                    f"{why}: use whole-episode batches (collector.trajs_per_batch, or the 'episodes' collector)",
                )
        if self.optim.name in TRUST_REGION_OPTIMIZERS:
            if self.critic is not None and self.critic_optim is None:
                raise _CrossError("critic_optim", f"optim {self.optim.name!r} steps the actor only: name the critic's "
                                                  f"own optimizer here, e.g. {{name: adam, lr: 1.0e-3}}")
            if self.train.epochs > 1 or self.train.minibatches > 1 or self.train.per_step_updates:
                raise _CrossError("train", f"optim {self.optim.name!r} takes one trust-region step per batch: "
                                           f"set epochs: 1, minibatches: 1, per_step_updates: false")
        if self.critic_optim is not None and self.critic_optim.name in TRUST_REGION_OPTIMIZERS:
            raise _CrossError("critic_optim.name", f"{self.critic_optim.name!r} steps a policy: give the critic "
                                                   f"a gradient optimizer (adam, sgd, rmsprop)")
        if self.train.target_kl is not None and self.train.epochs == 1:
            raise _CrossError("train.target_kl", "stops a batch's passes early: use it with epochs > 1")
        if self.train.per_step_updates and (self.train.epochs > 1 or self.train.minibatches > 1):
            raise _CrossError("train.per_step_updates", "updates at every time step: set epochs: 1, minibatches: 1")
        if self.critic_optim is not None and self.critic is None:
            raise _CrossError("critic_optim", "there is no critic to optimize: add a `critic:` section or remove this one")
        if self.train.value_steps > 1 and self.critic is None:
            raise _CrossError("train.value_steps", "value steps need a critic: set 1 or add a `critic:` section")
        if self.train.per_step_updates and not self.whole_episodes:
            raise _CrossError("train.per_step_updates", "needs whole-episode batches: use the 'episodes' collector")
        if self.train.per_step_solver != "auto" and not self.train.per_step_updates:
            raise _CrossError("train.per_step_solver", "only with train.per_step_updates: true (or leave it at auto)")
        if self.train.per_step_updates and self.train.value_steps > 1:
            raise _CrossError("train.value_steps", "per-step updates take one critic step per time step: set 1")
        if self.sweep is not None:
            lengths = [len(v) for v in self.sweep.values.values()]
            count = max(lengths) if self.sweep.mode == "zip" else math.prod(lengths)
            if count > MAX_SWEEP_RUNS:
                raise _CrossError(
                    "sweep.values",
                    f"{count} combinations ({' x '.join(map(str, lengths))}) is more than the {MAX_SWEEP_RUNS} runs "
                    f"a sweep may start: use fewer values, or mode: zip",
                )
            if self.sweep.mode == "zip" and len(set(lengths)) > 1:
                raise _CrossError("sweep.values", f"mode 'zip' needs lists of one length, got lengths {sorted(set(lengths))}")
            if self.sweep.labels is not None and len(self.sweep.labels) != count:
                raise _CrossError("sweep.labels", f"{len(self.sweep.labels)} labels for {count} combinations")
            if self.sweep.address is not None and self.sweep.backend != "ray":
                raise _CrossError("sweep.address", "only with backend: ray (backend 'local' runs on this machine)")
        if self.tune is not None:
            self._tune_rules(self.tune)
        collector = self.collector
        num_envs = getattr(self.env, "num_envs", 1)  # a plugin env may fix its own batch
        backend = "ray" if collector.name == "ray" else getattr(collector, "backend", None)  # `ray`: sync on Ray
        if backend == "direct":
            for field in ("num_collectors", "address"):
                if getattr(collector, field) is not None:
                    raise _CrossError(f"collector.{field}", "only with backend: ray (backend 'direct' collects in this process)")
        if backend == "ray":
            if getattr(collector, "trajs_per_batch", None) is not None:
                raise _CrossError("collector.trajs_per_batch", "backend 'ray' yields fixed-frame batches: use frames_per_batch")
            if self.device != "cpu":
                raise _CrossError("device", "Ray workers collect on CPU: set device: cpu with a Ray collector")
            workers = collector.num_collectors or RAY_WORKERS
            if collector.frames_per_batch % (workers * num_envs):
                raise _CrossError(
                    "collector.frames_per_batch",
                    f"{collector.frames_per_batch} does not split evenly over {workers} Ray workers of "
                    f"env.num_envs={num_envs} envs: use a multiple of {workers * num_envs}",
                )
        local = collector.name == "native" or backend == "direct"
        if local and collector.frames_per_batch % num_envs:
            raise _CrossError(
                "collector.frames_per_batch",
                f"{collector.frames_per_batch} is not a multiple of env.num_envs={num_envs}",
            )
        return self


    def _tune_rules(self, tune: TuneConfig) -> None:
        if self.sweep is not None:
            raise _CrossError("tune", "a spec has a sweep: or a tune: section, not both (the study picks its own values)")
        if tune.metric == FRAMES_TO_TARGET and (self.eval.target_return is None or self.eval.episodes == 0):
            raise _CrossError("tune.metric", f"{FRAMES_TO_TARGET!r} needs eval.target_return and eval.episodes > 0")
        if tune.metric.startswith("eval/") and self.eval.episodes == 0:
            raise _CrossError("tune.metric", f"{tune.metric!r} needs evaluations: set eval.episodes > 0")
        if tune.pruner != "none" and (self.eval.every_frames is None or self.eval.episodes == 0):
            raise _CrossError("tune.pruner", "prunes at evaluations during training: set eval.every_frames "
                                             "(and eval.episodes > 0), or pruner: none")
        if tune.address is not None and tune.backend != "ray":
            raise _CrossError("tune.address", "only with backend: ray (backend 'local' runs on this machine)")


_BUILT_AT = Registry.version  # the registries Spec's sections were built from


class _CrossError(ValueError):
    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


# --- loading ------------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a mapping with the same key twice (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {shown(key)} (lines {seen[key]} and {line}): keep one", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """How many values ``node`` holds with every alias expanded, counting each shared
    container once (``sizes`` memoizes by identity): linear in the YAML text, not in its expansion."""
    if not isinstance(node, (dict, list)):
        return 1
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a cycle (a recursive alias) is counted as it stands
        children = node.values() if isinstance(node, dict) else node
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        kind = "" if problem.startswith("duplicate key") else "malformed YAML "
        raise SpecError(f"{source}: {where}{kind}({problem})" if kind else f"{source}: {where}{problem}") from None
    except RecursionError:
        raise SpecError(f"{source}: the YAML nests too deep") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the spec must be a YAML mapping of sections (experiment, env, actor, ...), got {type(raw).__name__}")
    size = _expanded_size(raw, {})
    if size > MAX_SPEC_VALUES:
        raise SpecError(
            f"{source}: the spec expands to {size} values, more than {MAX_SPEC_VALUES} (YAML anchors and aliases "
            f"nested inside each other?): write it out without them"
        )
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Applies ``key.path=value`` overrides (values parsed as YAML) to a raw spec mapping."""
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise SpecError(f"{source}: override {item!r}: write key.path=value, e.g. optim.lr=1.0e-3")
        parsed = _read_yaml(f"v: {value}", f"override {item!r}")["v"] if value else None
        try:
            _set_path(raw, path, parsed)
        except _NotASection as err:
            raise SpecError(f"{source}: override {item!r}: {err.part!r} is not a section") from None
    return raw


class _NotASection(KeyError):
    def __init__(self, part: str):
        super().__init__(part)
        self.part = part


def _set_path(raw: dict[str, Any], path: str, value: Any, create: bool = True) -> None:
    """``raw[a][b][c] = value`` for ``path = "a.b.c"``, creating missing sections (unless not
    ``create``); raises :class:`_NotASection` where a part of the path is not a section."""
    node = raw
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {}) if create else node.get(part)
        if not isinstance(node, dict):
            raise _NotASection(part)
    node[last] = value


_FIXED_SECTIONS = {"train": TrainConfig, "eval": EvalConfig, "tracking": TrackingConfig, "sweep": SweepConfig,
                   "tune": TuneConfig}


def _fields_at(loc: tuple) -> list[str]:
    """The keys a spec accepts at a location (for "did you mean" hints)."""
    if not loc:
        return list(Spec.model_fields)
    section = loc[0]
    if section in REGISTRIES and len(loc) >= 2 and loc[1] in REGISTRIES[section]:
        return list(REGISTRIES[section][loc[1]].model.model_fields)
    if section in _FIXED_SECTIONS:
        return list(_FIXED_SECTIONS[section].model_fields)
    return []


def _format_error(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx", {})
    # Drop the union tag pydantic inserts after a component section (optim.adam.lr -> optim.lr).
    parts = [p for i, p in enumerate(loc) if not (i == 1 and loc[0] in REGISTRIES)]
    path = ".".join(str(p) for p in parts) or "(top level)"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        section = str(loc[0])
        names = REGISTRIES[section].names()
        given = ctx.get("tag")
        if given is None:
            return f"{section}.name: missing; name a registered {REGISTRIES[section].kind}: {', '.join(names)}"
        return f"{section}.name: unknown {REGISTRIES[section].kind} {shown(given)}{did_you_mean(given, names)} (registered: {', '.join(names)})"
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        hint = did_you_mean(loc[-1], known)
        if not hint and len(loc) == 3 and loc[0] in REGISTRIES:  # a field another component of the section has
            owners = REGISTRIES[loc[0]].owners(str(loc[-1]))
            if owners:
                hint = f" for {REGISTRIES[loc[0]].kind} {loc[1]!r}; {', '.join(map(repr, owners))} accept{'s' if len(owners) == 1 else ''} it"
        return f"{path}: unknown key{hint} (accepted: {', '.join(known)})"
    if kind == "missing":
        return f"{path}: missing required key"
    msg = err["msg"]
    value = err.get("input")
    if isinstance(value, str) and kind in ("float_type", "int_type"):
        try:
            float(value)
            msg += f"; got the string {shown(value)} (YAML reads 3e-4 as text: write 3.0e-4)"
        except ValueError:
            msg += f", got {shown(value)}"
    elif kind not in ("value_error",) and not isinstance(value, (dict, list)):
        msg += f", got {shown(value)}"
        if kind == "literal_error" and isinstance(value, str):  # e.g. per_step_solver: fixed_pont
            msg += did_you_mean(value, re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
    return f"{path}: {msg.removeprefix('Value error, ')}"


def _reject_non_finite(raw: Any, path: str, source: str, seen: set[int] | None = None) -> None:
    """YAML's .nan/.inf pass as floats: no spec number may be one. A container shared through
    YAML aliases is walked once."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise SpecError(f"{source}: {path}: {raw} is not a finite number")
    seen = set() if seen is None else seen
    if isinstance(raw, (dict, list)):
        if id(raw) in seen:
            return
        seen.add(id(raw))
    if isinstance(raw, dict):
        for k, v in raw.items():
            _reject_non_finite(v, f"{path}.{k}" if path else str(k), source, seen)
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            _reject_non_finite(v, f"{path}[{i}]", source, seen)


def _load_plugins(raw: dict[str, Any], source: str) -> None:
    """Imports the spec's ``plugins:`` modules and registers the ``module:function`` components
    its sections name, which must come from those modules."""
    import importlib

    plugins = raw.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(m, str) and re.match(PLUGIN_PATTERN, m) for m in plugins):
        raise SpecError(f"{source}: plugins: a list of module names like my_package.components")
    for module in plugins:
        try:
            importlib.import_module(module)
        except Exception as err:  # a plugin's own import error, reported as the spec's problem
            raise SpecError(f"{source}: plugins: cannot import {module!r} ({type(err).__name__}: {err})") from None
    env = raw.get("env")
    env_id = env.get("env_id") if isinstance(env, dict) else None
    module = env_id.partition(":")[0] if isinstance(env_id, str) and ":" in env_id else None
    if module is not None and module not in plugins and re.match(PLUGIN_PATTERN, module):  # else: an unknown id
        raise SpecError(
            f"{source}: env.env_id: {env_id!r} imports code from {module!r}, which the spec does not trust: "
            f"add it under plugins: [{module}] (its import registers the env)"
        )
    for section, registry in REGISTRIES.items():
        node = raw.get(section)
        name = node.get("name") if isinstance(node, dict) else None
        if not isinstance(name, str) or ":" not in name or name in registry:
            continue
        module, _, attr = name.partition(":")
        if not re.match(PLUGIN_PATTERN, module):
            raise SpecError(f"{source}: {section}.name: {shown(name)} is neither a registered name nor module:function")
        if module not in plugins:
            raise SpecError(
                f"{source}: {section}.name: {name!r} imports code from {module!r}, which the spec does not "
                f"trust: add it under plugins: [{module}] (or use a registered name)"
            )
        factory = getattr(sys.modules[module], attr, None)
        if not callable(factory):
            raise SpecError(f"{source}: {section}.name: module {module!r} has no function {attr!r}")
        registry.register(name)(factory)


_spec_classes: dict[int, type] = {}


def _spec_class() -> type[Spec]:
    """:class:`Spec`, or a subclass accepting components registered since it was built (plugins)."""
    if Registry.version == _BUILT_AT:
        return Spec
    if Registry.version not in _spec_classes:
        optional = ("critic", "critic_optim")
        fields = {k: (Optional[_section(k)], None) if k in optional else (_section(k), ...) for k in REGISTRIES}
        _spec_classes[Registry.version] = create_model("Spec", __base__=Spec, **fields)
    return _spec_classes[Registry.version]


def parse_spec(raw: dict[str, Any], source: str = "<spec>") -> Spec:
    """Validates a raw mapping into a :class:`Spec`, or raises a one-line :class:`SpecError`."""
    _reject_non_finite(raw, "", source)
    if isinstance(raw, dict):
        _load_plugins(raw, source)
    try:
        return _spec_class().model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for err in errors:
            ctx = err.get("ctx") or {}
            cross = ctx.get("error")
            if isinstance(cross, _CrossError):
                raise SpecError(f"{source}: {cross.path}: {cross.message}") from None
        first = min(errors, key=lambda e: (e["type"] != "union_tag_invalid", len(e["loc"])))
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(f"{source}: {_format_error(first)}{more}") from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Reads, overrides and validates a spec file.

    >>> load_spec("pipelines/vpg_cartpole.yaml").env.env_id
    'CartPole-v1'
    """
    source = str(path)
    text = read_spec_text(path)
    raw = _read_yaml(text, source)
    raw = apply_overrides(raw, overrides or [], source)
    return parse_spec(raw, source)


def read_spec_text(path: str | Path) -> str:
    """A spec file's text, or a one-line :class:`SpecError`: no such file, not a regular file
    (a folder, ``/dev/zero``), larger than :data:`MAX_SPEC_BYTES`, unreadable, not UTF-8."""
    source, path = str(path), Path(path)
    try:
        if not path.exists():
            raise SpecError(f"{source}: no such file")
        if not path.is_file():
            raise SpecError(f"{source}: not a regular file: name a YAML spec file")
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"{source}: {size} bytes, more than the {MAX_SPEC_BYTES} a spec may have")
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{source}: cannot read the spec ({type(err).__name__})") from None


def expand_sweep(spec: Spec, source: str = "<spec>") -> list[tuple[str, Spec]]:
    """The ``(label, spec)`` of every combination of ``spec.sweep`` (each without a sweep),
    validated like a file: a bad value is reported as ``sweep.values.KEY: ...``."""
    import itertools

    sweep = spec.sweep
    keys = list(sweep.values)
    lists = [sweep.values[k] for k in keys]
    combos = list(zip(*lists)) if sweep.mode == "zip" else list(itertools.product(*lists))
    base = spec.model_dump(mode="json", exclude={"sweep"})
    out = []
    for i, combo in enumerate(combos):
        raw = copy.deepcopy(base)
        for key, value in zip(keys, combo):
            try:
                _set_path(raw, key, value, create=False)
            except _NotASection as err:
                raise SpecError(f"{source}: sweep.values.{key}: {err.part!r} is not a section of the spec") from None
        try:
            child = parse_spec(raw, source)
        except SpecError as err:
            raise SpecError(f"{source}: sweep.values: {str(err).removeprefix(source + ': ')}") from None
        label = sweep.labels[i] if sweep.labels else ", ".join(f"{k}={v}" for k, v in zip(keys, combo))
        out.append((label, child))
    return out


def flatten(spec: Spec) -> dict[str, Any]:
    """The spec as ``{"optim.lr": 0.003, ...}`` for MLflow params (lists as their repr)."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
        else:
            out[prefix] = node

    walk(spec.model_dump(mode="json"), "")
    return out

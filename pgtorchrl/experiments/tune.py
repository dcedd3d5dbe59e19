"""Hyperparameter studies: Optuna over a spec's ``tune.space``, tracked in MLflow, resumable.

The same command as any spec (``python -m pgtorchrl SPEC``, ``tune.n_trials=...`` as an
override) runs the study:

- **Sampling and pruning**: Optuna's TPE sampler seeded with ``tune.sampler_seed`` (plus the
  number of trials the study already holds, so a continued study draws new values rather than
  the first ones again), and at each evaluation the median or Hyperband pruner on
  ``eval/return_mean`` (negated when the study minimizes ``frames_to_target``). With several
  ``tune.seeds`` the first seed's run reports for pruning; the objective is the seeds' mean.
- **MLflow**: one parent run per study (``pgtorchrl.study`` tag; a rerun reopens it), one child
  run per trial (the trial's spec as params, ``tune.trial``, ``tune.state`` COMPLETE / PRUNED /
  FAIL tags, ``tune/objective``, the seeds' mean ``eval/return_mean`` curve), and under it one
  training run per seed. The parent logs ``tune/objective`` and ``tune/best_value`` per trial,
  ``best.yaml`` (the spec with the best parameters, ready to train), and the optimization
  history, parameter importances and parallel-coordinate plots as PNGs.
- **Resumable**: the study lives in Optuna's RDB storage (``tune.storage``; by default
  ``sqlite:///mlruns/optuna.db``). A rerun continues it up to ``tune.n_trials`` finished (COMPLETE
  or PRUNED) trials. Ctrl-C marks the running trials FAIL in the study and their MLflow runs
  KILLED; trials left RUNNING by a process that died are marked FAIL when the study continues.
- **Where trials run**: this process asks the study for each trial (its sampler draws the
  parameters here) and tells it the outcome; the trial trains in this process (``workers: 1``),
  in a local worker process, or as a Ray task (``backend: ray``, :mod:`pgtorchrl.experiments.remote`),
  up to ``workers`` at a time, reporting for pruning through the study's storage.

A trial whose training fails (a diverging learning rate: non-finite weights) is FAIL and the
study goes on; a tracking failure stops the study.
"""

from __future__ import annotations

import copy
import io
import json
import statistics
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from pgtorchrl.config.overrides import NotASection, set_path
from pgtorchrl.config.registry import did_you_mean, shown
from pgtorchrl.config.spec_file import SpecError
from pgtorchrl.experiments.workers import InlinePool, ProcessPool
from pgtorchrl.pipeline.parse import flatten, parse_spec
from pgtorchrl.pipeline.schema import Spec
from pgtorchrl.pipeline.search_space import FRAMES_TO_TARGET, TuneConfig
from pgtorchrl.record.store_lock import store_lock
from pgtorchrl.record.tracking import TrackedRun, TrackingError, mlflow_client, resolve_tracking_uri
from pgtorchrl.trainers.trainer import NonFiniteLossError, TrainResult, train

__all__ = ["DEFAULT_STORAGE", "check_space", "run_study", "StudySummary", "trial_spec", "storage_url"]

DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
_NOT_SEARCHABLE = ("experiment", "plugins", "tracking", "sweep", "tune")
MAX_FAILURES_IN_A_ROW = 3
"""A worker stops the study after this many trials failed one after another (a metric the runs
never log, a store that rejects writes ...): failed trials do not count toward ``n_trials``."""


def storage_url(tune: TuneConfig) -> str:
    """The study's Optuna storage (``tune.storage``, or :data:`DEFAULT_STORAGE`, whose folder is created)."""
    if tune.storage is not None:
        return tune.storage
    Path("mlruns").mkdir(exist_ok=True)
    return DEFAULT_STORAGE


def _base(spec: Spec) -> dict[str, Any]:
    """The spec as a plain mapping without its ``tune:`` section: what each trial starts from."""
    return spec.model_dump(mode="json", exclude={"tune"})


def tune_of(spec: Spec) -> TuneConfig:
    """The spec's ``tune:`` section (a study's spec has one)."""
    if spec.tune is None:
        raise ValueError(f"spec {spec.experiment!r} has no tune: section to run a study from")
    return spec.tune


def check_space(spec: Spec, source: str = "<spec>") -> None:
    """Raises a one-line :class:`SpecError` unless every ``tune.space`` path is a field of this
    spec (with the nearest field path as a hint) and every bound or choice validates there."""
    base = _base(spec)
    fields = list(flatten(spec).keys())
    for path, dim in tune_of(spec).space.items():
        where = f"{source}: tune.space.{path}"
        if path.split(".")[0] in _NOT_SEARCHABLE:
            raise SpecError(f"{where}: the {path.split('.')[0]!r} section cannot be searched")
        if path not in fields:
            known = [f for f in fields if not f.startswith("tune.")]
            raise SpecError(
                f"{where}: no such spec field{did_you_mean(path, known)} (a field path as in overrides, e.g. optim.lr)"
            )
        for value in dim.candidates():
            raw = copy.deepcopy(base)
            set_path(raw, path, value, create=False)
            try:
                parse_spec(raw, source)
            except SpecError as err:
                raise SpecError(
                    f"{where}: {shown(value)} is not valid there ({str(err).removeprefix(source + ': ')})"
                ) from None


def trial_spec(base: dict[str, Any], params: dict[str, Any], seed: int, source: str = "<spec>") -> Spec:
    """The spec a trial trains: ``base`` with the trial's ``params`` and ``seed``."""
    raw = copy.deepcopy(base)
    try:
        for path, value in params.items():
            set_path(raw, path, value, create=False)
    except NotASection as err:  # check_space ran first: only a changed registry gets here
        raise SpecError(f"{source}: tune.space: {err.part!r} is not a section") from None
    raw["seed"] = seed
    return parse_spec(raw, source)


@dataclass
class StudySummary:
    """What :func:`run_study` reports: the parent run, the best trial and the trials' states."""

    parent_run_id: str
    study_name: str
    storage: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    states: dict[str, int]


@dataclass(frozen=True)
class _Job:
    """What a worker needs to run trials (plain data: it travels to worker processes and Ray tasks)."""

    base: dict[str, Any]
    source: str
    spec_text: str | None
    parent_id: str
    storage: str
    study_name: str
    tracking_uri: str


def _sampler(tune: TuneConfig, offset: int):
    import optuna

    return optuna.samplers.TPESampler(seed=tune.sampler_seed + offset, n_startup_trials=tune.startup_trials)


def _pruner(tune: TuneConfig):
    import optuna

    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.prune_after_trials, n_min_trials=1)
    if tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def _study(tune: TuneConfig, storage: str, name: str, offset: int | None = None):
    """Creates or loads the study, its TPE sampler seeded with ``sampler_seed + offset``
    (``offset``: by default the number of trials already stored)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def create(sampler=None):
        return optuna.create_study(
            storage=storage,
            study_name=name,
            direction=tune.resolved_direction,
            sampler=sampler,
            pruner=_pruner(tune),
            load_if_exists=True,
        )

    with store_lock(storage):  # a new SQLite storage is created by one process at a time
        if offset is None:
            offset = len(create(optuna.samplers.RandomSampler(seed=0)).get_trials(deepcopy=False))
        return create(_sampler(tune, offset))


def _objective(tune: TuneConfig, spec: Spec, results: list[TrainResult]) -> float:
    """The trial's objective: the seeds' mean of the last ``tune.metric`` (``eval/return_mean``:
    the final evaluation), or of the frames to ``eval.target_return`` (``train.total_frames`` if
    a seed never reached it)."""
    values = []
    for result in results:
        if tune.metric == FRAMES_TO_TARGET:
            values.append(float(result.frames if result.solved else spec.train.total_frames))
        elif tune.metric == "eval/return_mean":
            if result.eval_return is None:  # the rules ask eval.episodes > 0 of this metric
                raise ValueError("tune.metric 'eval/return_mean': the training run made no evaluation")
            values.append(result.eval_return)
        else:
            logged = [row[tune.metric] for row in result.curve if tune.metric in row]
            if not logged:
                raise ValueError(f"tune.metric {tune.metric!r}: the training run logged no such metric")
            values.append(logged[-1])
    return statistics.fmean(values)


def _mean_eval_curve(results: list[TrainResult]) -> dict[int, float]:
    """The seeds' mean ``eval/return_mean`` at each frame count any of them evaluated at."""
    by_frames: dict[int, list[float]] = {}
    for result in results:
        for row in result.curve:
            if "eval/return_mean" in row:
                by_frames.setdefault(int(row["frames"]), []).append(row["eval/return_mean"])
    return {frames: statistics.fmean(v) for frames, v in sorted(by_frames.items())}


def _run_trial(job: _Job, tune: TuneConfig, trial) -> tuple[str, float | None]:
    """Trains one trial (every seed) as a child run of the study's parent; returns its Optuna
    state name and objective."""
    params = {path: dim.decode(trial.params[path]) for path, dim in tune.space.items()}  # drawn by the driver
    seeds = tune.seeds or [job.base["seed"]]
    specs = [trial_spec(job.base, params, seed, job.source) for seed in seeds]
    label = f"trial {trial.number}"
    tags = {"mlflow.parentRunId": job.parent_id, "tune.trial": str(trial.number), "tune.params": json.dumps(params)}
    negate = tune.resolved_direction == "minimize"

    def report(frames: int, value: float) -> str | None:
        trial.report(-value if negate else value, step=frames)
        return "pruned" if trial.should_prune() else None

    with TrackedRun(specs[0], job.spec_text, tags=tags, run_name=label) as trial_run:
        trial_id = trial_run.wait_opened()
        results = []
        for i, (seed, child) in enumerate(zip(seeds, specs)):
            run = TrackedRun(
                child,
                job.spec_text,
                tags={"mlflow.parentRunId": trial_id, "tune.seed": str(seed)},
                run_name=f"{label} seed {seed}",
            )
            results.append(
                train(child, job.spec_text, run=run, on_eval=report if i == 0 and tune.pruner != "none" else None)
            )
            if results[-1].stopped == "pruned":
                break
        for frames, value in _mean_eval_curve(results).items():
            trial_run.log_metrics({"eval/return_mean": value}, step=frames)
        if results[-1].stopped == "pruned":
            trial_run.set_tag("tune.state", "PRUNED")
            return "PRUNED", None
        value = _objective(tune, specs[0], results)
        trial_run.log_metrics({"tune/objective": value}, step=trial.number)
        trial_run.set_tag("tune.state", "COMPLETE")
    return "COMPLETE", value


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _trial_job(job: _Job, tune_raw: dict, trial_id: int) -> tuple[str, Any]:
    """A pool's job: trains the trial ``trial_id`` the driver asked for (its parameters are
    already drawn; pruning decisions go through the study's storage). Returns ``(state, value)``,
    or ``("FAIL", reason)`` when this trial's values fail training (a diverging learning rate);
    an interrupt or a tracking failure propagates."""

    import optuna

    warnings.filterwarnings("ignore", module="torchrl")  # as the command line does in its own process
    tune = TuneConfig.model_validate(tune_raw)
    study = _study(tune, job.storage, job.study_name, offset=0)  # this process samples nothing
    try:
        return _run_trial(job, tune, optuna.trial.Trial(study, trial_id))
    except TrackingError:
        raise
    except (NonFiniteLossError, ValueError, RuntimeError) as err:
        return "FAIL", (str(err).splitlines()[0][:300] if str(err) else type(err).__name__)


def _pool(tune: TuneConfig, tracking_uri: str):
    """Where the trials train: this process, local worker processes, or Ray tasks."""
    if tune.backend == "ray":
        from pgtorchrl.experiments.remote import RayPool  # Ray is optional: imported when a spec asks for it

        return RayPool(tune.workers, tune.address, tracking_uri)
    return ProcessPool(tune.workers) if tune.workers > 1 else InlinePool()


def _run_trials(job: _Job, tune: TuneConfig, study, pool) -> None:
    """The driver: asks the study for trials (its sampler draws their parameters here), runs them
    in ``pool`` and tells the study each outcome, until the study holds ``tune.n_trials``
    finished trials. On an interrupt or a failure the running trials are stopped (their runs end
    KILLED) and marked FAIL in the study, so it stays consistent."""
    from optuna.trial import TrialState

    distributions = {path: dim.distribution() for path, dim in tune.space.items()}
    tune_raw = tune.model_dump(mode="json")
    running: dict[int, Any] = {}
    failures = 0
    send_interrupt = True
    try:
        while True:
            while pool.free and _finished(study) + len(running) < tune.n_trials:
                trial = study.ask(distributions)
                running[trial.number] = trial
                pool.submit(trial.number, _trial_job, (job, tune_raw, trial._trial_id))
            if not running:
                return
            number, (status, outcome) = pool.wait()
            trial = running.pop(number)
            if status == "error":
                running[number] = trial  # still to be marked FAIL below
                raise outcome
            state, value = outcome
            if state == "FAIL":
                print(f"pgtorchrl: warning: trial {number} failed: {value}", file=sys.stderr)
                study.tell(trial, state=TrialState.FAIL)
                failures += 1
                if failures >= MAX_FAILURES_IN_A_ROW:
                    raise RuntimeError(f"{failures} trials in a row failed, the last: {value}")
                continue
            failures = 0
            study.tell(trial, value, state=getattr(TrialState, state))
            shown_value = "" if value is None else f" {tune.metric} {value:.6g}"
            print(f"pgtorchrl: trial {number} {state}{shown_value} with {json.dumps(trial.params)}", file=sys.stderr)
    except KeyboardInterrupt as err:
        send_interrupt = str(err).startswith("signal")  # a terminal's Ctrl-C already reached local workers
        raise
    finally:
        pool.stop(send_interrupt)
        for trial in running.values():
            study.tell(trial, state=TrialState.FAIL)


def _figures(study) -> dict[str, bytes]:
    """The study's optimization history, parameter importances and parallel-coordinate plot
    (Optuna's matplotlib plots) as PNGs; a plot the study cannot give yet (importances need two
    finished trials) is left out with a warning."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    out = {}
    for name, plot, size in (
        ("optimization_history.png", plots.plot_optimization_history, (9, 5)),
        ("param_importances.png", plots.plot_param_importances, (9, 5)),
        ("parallel_coordinate.png", plots.plot_parallel_coordinate, (14, 7)),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = plot(study)
            figure: Any = (ax.flat[0] if hasattr(ax, "flat") else ax).figure  # a matplotlib Figure
            figure.set_size_inches(*size)
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100)
            plt.close(figure)
            out[name] = buffer.getvalue()
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            print(f"pgtorchrl: warning: {name} not drawn: {str(err).splitlines()[0][:200]}", file=sys.stderr)
    return out


def best_spec_yaml(spec: Spec, params: dict[str, Any], source: str = "<spec>") -> str:
    """``best.yaml``: the spec with the best trial's parameters and no ``tune:`` section,
    validated again before it is written."""
    raw = _base(spec)
    for path, value in params.items():
        set_path(raw, path, value, create=False)
    parse_spec(copy.deepcopy(raw), source)
    header = f"# the best trial of study {tune_of(spec).study_name or spec.experiment!r}: {json.dumps(params)}\n"
    return header + yaml.safe_dump(raw, sort_keys=False)


def _parent_run_id(spec: Spec, key: str) -> str | None:
    """The MLflow parent run of the study ``key`` (a rerun continues it), if one exists."""
    client = mlflow_client(spec.tracking.tracking_uri)
    experiment = client.get_experiment_by_name(spec.experiment)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`pgtorchrl.study` = '{key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def run_study(spec: Spec, spec_text: str | None = None, source: str = "<spec>") -> StudySummary:
    """Runs (or continues) the study ``spec.tune`` describes; returns its summary."""

    from optuna.trial import TrialState

    tune = tune_of(spec)
    check_space(spec, source)
    storage = storage_url(tune)
    name = tune.study_name or spec.experiment
    key = f"{name}@{storage}"
    study = _study(tune, storage, name)  # its sampler's offset counts every stored trial, stale ones included
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(stale.number, state=TrialState.FAIL)  # left by a process that died
    resume = _parent_run_id(spec, key)
    tags = {"pgtorchrl.study": key, "tune.storage": storage, "tune.study_name": name}
    parent = TrackedRun(spec, spec_text, tags=tags, run_name=f"study {name}", resume_run_id=resume)
    with parent:
        parent_id = parent.wait_opened()
        uri = resolve_tracking_uri(spec.tracking.tracking_uri)
        job = _Job(_base(spec), source, spec_text, parent_id, storage, name, uri)
        _run_trials(job, tune, study, _pool(tune, uri))
        trials = study.get_trials(deepcopy=False)
        best_value = best_value_so_far = None
        for trial in sorted(trials, key=lambda t: t.number):
            if trial.state == TrialState.COMPLETE:
                value = cast(float, trial.value)  # a COMPLETE trial has its value
                better = best_value_so_far is None or (
                    value < best_value_so_far if tune.resolved_direction == "minimize" else value > best_value_so_far
                )
                best_value_so_far = value if better or best_value_so_far is None else best_value_so_far
                parent.log_metrics({"tune/objective": value, "tune/best_value": best_value_so_far}, step=trial.number)
        states = {
            s.name: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        for state, count in states.items():
            parent.set_tag(f"tune.trials_{state.lower()}", str(count))
        best_params, best_trial = {}, None
        if states["COMPLETE"]:
            best = study.best_trial
            best_value, best_trial = best.value, best.number
            best_params = {path: dim.decode(best.params[path]) for path, dim in tune.space.items()}
            parent.log_text(best_spec_yaml(spec, best_params, source), "best.yaml")
            parent.set_tag("tune.best_trial", str(best_trial))
        for artifact, png in _figures(study).items():
            parent.log_bytes(png, artifact)
    return StudySummary(parent_id, name, storage, best_value, best_params, best_trial, states)

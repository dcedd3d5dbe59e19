"""``pgtorchrl`` / ``python -m pgtorchrl``: train, validate, list, evaluate, resume and compare pipelines.

Every subcommand that builds a pipeline goes through one prelude (:func:`_prelude`) and every
failure is one :class:`CommandError` line with its exit code (2: bad input, 1: training failed,
130: interrupted). torch and MLflow are imported only by the commands that need them, after the
spec has validated and the MLflow writer process has started (``tests/test_import_graph.py``
lists what may be deferred, and why).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import typing
import warnings
from pathlib import Path

import yaml

from pgtorchrl.components import TORCHRL_PREFIX
from pgtorchrl.config.spec_file import SpecError
from pgtorchrl.experiments.workers import start_worker_server
from pgtorchrl.pipeline.parse import expand_sweep, load_spec
from pgtorchrl.pipeline.reference import component_sections, fixed_sections, top_level_fields
from pgtorchrl.record.interrupts import raise_swallowed_interrupt
from pgtorchrl.record.owner import mark_abandoned_runs
from pgtorchrl.record.plots import learning_curve_png
from pgtorchrl.record.tracking import (
    CLOSING_INTERRUPT,
    TrackedRun,
    TrackingError,
    check_store,
    mlflow_client,
    run_lock,
    write_problem,
)

EXIT_BAD_INPUT = 2
EXIT_TRAINING_FAILED = 1
EXIT_INTERRUPTED = 130
MAX_SEEDS = 1000  # --seeds: as many as a sweep list may hold

EPILOG = """examples:
  pgtorchrl pipelines/vpg_cartpole.yaml                    train, tracked in MLflow
  pgtorchrl pipelines/vpg_cartpole.yaml optim.lr=1.0e-3 seed=3
  pgtorchrl validate pipelines/vpg_cartpole.yaml           check spec and key flow, train nothing
  pgtorchrl list                                           registered components and their fields
  pgtorchrl eval RUN_ID --episodes 20                      evaluate a trained run's actor
  pgtorchrl export models:/NAME@champion --format onnx --out policy.onnx
  pgtorchrl resume RUN_ID                                  continue a stopped run from its last checkpoint
  pgtorchrl compare --experiment vpg-cartpole              one PNG of several runs' learning curves
browse runs:
  mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --workers 1
"""


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line's parser and each subcommand's own."""
    parser = _Parser(
        prog="pgtorchrl",
        description="Policy-gradient pipelines on TorchRL, tracked in MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command", metavar="{train,validate,list,eval,export,resume,compare}", parser_class=_Parser
    )
    for name, help_text in (
        ("train", "train a pipeline (the default command)"),
        ("validate", "validate a spec, build its components, check key flow; no run"),
    ):
        cmd = sub.add_parser(name, help=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_argument("pipeline", type=Path, help="a pipeline spec (YAML), e.g. pipelines/vpg_cartpole.yaml")
        cmd.add_argument(
            "overrides", nargs="*", metavar="key.path=value", help="override spec fields (values are YAML)"
        )
        cmd.add_argument(
            "--seeds",
            metavar="0-4",
            help="one child run per seed (0-4 or 0,3,7) under a parent run "
            "that plots the mean and 95%% band of eval/return_mean",
        )
        cmd.add_argument("--dry-run", action="store_true", help="validate only: the same as the validate command")
    listing = sub.add_parser("list", help="list the spec's sections, registered components and their fields")
    listing.add_argument("--docs", action="store_true", help="each field's doc line too")
    ev = sub.add_parser(
        "eval",
        help="evaluate a run's trained actor, or a registered policy (deterministic episodes)",
        epilog="example:\n  pgtorchrl eval 3f2c9d... --episodes 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument(
        "run_id",
        metavar="RUN_ID|MODEL_URI",
        help="an MLflow run id (see the MLflow UI or the train command's last line), or a policy's "
        "MLflow Model: models:/NAME@champion, models:/NAME/VERSION",
    )
    ev.add_argument("--episodes", type=int, default=10, help="episodes to run side by side (default 10)")
    ev.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default=None,
        help="where to run the actor and env (default: the run's own device)",
    )
    ev.add_argument(
        "--video",
        action="store_true",
        help="also record one rendered episode and log it to the run as video/episode.gif",
    )
    ex = sub.add_parser(
        "export",
        help="write a trained policy as an ONNX file or a torch.export program (deterministic, normalization included)",
        epilog="examples:\n  pgtorchrl export models:/cartpole@champion --format onnx --out cartpole.onnx\n"
        "  pgtorchrl export 3f2c9d... --format pt2 --out policy.pt2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument(
        "source", metavar="RUN_ID|MODEL_URI", help="a run id or a policy's MLflow Model (models:/NAME@ALIAS)"
    )
    ex.add_argument("--format", choices=["onnx", "pt2"], required=True, help="onnx (onnxruntime) or pt2 (torch.export)")
    ex.add_argument("--out", type=Path, required=True, help="the file to write")
    res = sub.add_parser(
        "resume",
        help="continue a stopped run from its newest checkpoint, into the same MLflow run",
        epilog="example:\n  pgtorchrl resume 3f2c9d...   (a run left KILLED by Ctrl-C, FAILED, or "
        "RUNNING after a crash)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    res.add_argument("run_id", help="the MLflow run id to continue")
    res.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="continue from this local checkpoint file (one a run saved when its tracking failed) "
        "instead of the run's newest logged one",
    )
    cmp = sub.add_parser(
        "compare",
        help="plot several runs' learning curves in one PNG",
        epilog="examples:\n  pgtorchrl compare RUN_A RUN_B\n  pgtorchrl compare --experiment "
        "vpg-cartpole --metric eval/return_mean",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp.add_argument("run_ids", nargs="*", help="MLflow run ids")
    cmp.add_argument("--experiment", help="every top-level run of this MLflow experiment")
    cmp.add_argument(
        "--metric", default="rollout/episode_return", help="the metric to plot (default rollout/episode_return)"
    )
    cmp.add_argument("--output", type=Path, default=Path("compare.png"), help="the PNG to write (default compare.png)")
    return parser, dict(sub.choices)


VALUE_HINTS = {"--seeds": "a range like 0-4 or a list like 0,3,7"}
"""What an option that was given without its value needs, said in its one-line error."""


class _Parser(argparse.ArgumentParser):
    """argparse, with an option given without its value said in one line (:data:`VALUE_HINTS`)."""

    def error(self, message: str) -> typing.NoReturn:
        missing = re.match(r"argument (--[\w-]+): expected one argument", message)
        if missing and missing.group(1) in VALUE_HINTS:
            print(
                f"pgtorchrl: error: {missing.group(1)} needs a value: {VALUE_HINTS[missing.group(1)]}", file=sys.stderr
            )
            raise SystemExit(EXIT_BAD_INPUT)
        super().error(message)


def _parse(argv: list[str]) -> argparse.Namespace:
    """The command's arguments. ``pgtorchrl PIPELINE.yaml ...`` means ``train``; a subcommand's
    options may come before, between or after its ``key.path=value`` overrides."""
    parser, commands = _parser()
    if argv and argv[0] not in commands and not argv[0].startswith("-"):
        argv = ["train", *argv]
    if not argv or argv[0] not in commands:  # --help, no command, an unknown option
        parser.parse_args(argv)
        parser.print_help()
        raise SystemExit(EXIT_BAD_INPUT)
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


class CommandError(Exception):
    """A subcommand's failure: the one line it prints (after ``pgtorchrl: error:``) and its exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.message, self.code = message, code


def _reason(err: BaseException) -> str:
    """An exception as one short line: its message's first line (cut), with the exception's
    type where the message alone would not say what failed."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    text = text if len(text) <= 300 else text[:299] + "..."
    if text and (isinstance(err, (ValueError, TypeError, LookupError)) or type(err).__module__.startswith("pgtorchrl")):
        return text  # our own errors, and the builtins our checks raise, say what is wrong by themselves
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> ``[0, 1, 2, 3, 4]``; ``"0,3,7"`` -> ``[0, 3, 7]``."""
    if "-" in text:
        low, high = (int(x) for x in text.split("-", 1))
        if high < low or high - low >= MAX_SEEDS:
            raise ValueError(text)
        return list(range(low, high + 1))
    seeds = [int(x) for x in text.split(",", MAX_SEEDS)]
    if len(seeds) > MAX_SEEDS:
        raise ValueError(text)
    return seeds


# --- the prelude every subcommand shares ------------------------------------------------------------
def _quiet_libraries() -> None:
    """The command line's one warning policy: the libraries' own warnings (deprecations, TorchRL's
    notes on its collectors, MLflow's on its stores) are not the user's to act on and would break
    the one-line errors; warnings that pgtorchrl or a plugin issues still show."""
    warnings.filterwarnings("ignore", module=LIBRARY_WARNINGS)


LIBRARY_WARNINGS = (
    r"^(torch|torchrl|tensordict|mlflow|gymnasium|pydantic|optuna|ray|matplotlib|alembic|sqlalchemy|numpy)(\.|$)"
)
"""The modules whose warnings :func:`_quiet_libraries` silences."""


def _existing_store(writes: bool) -> None:
    """A command that reads runs (eval, resume, compare) needs the store to exist: a wrong folder
    is said, not given an empty store; one it ``writes`` to must be writable. Runs left RUNNING by
    processes of this host that are gone are marked KILLED first (:mod:`pgtorchrl.record.owner`),
    each said in a warning line."""
    try:
        uri = check_store(None, must_exist=True, writes=writes)
    except TrackingError as err:
        raise CommandError(str(err)) from None
    if not writes and write_problem(uri):  # a store only read (compare, eval) may be read-only
        return
    for run_id in mark_abandoned_runs(mlflow_client()):
        print(
            f"pgtorchrl: warning: run {run_id} was left RUNNING by a process that is gone: marked KILLED "
            f"(`pgtorchrl resume {run_id}` continues it)",
            file=sys.stderr,
        )


def _prelude(spec, variants, *, check: bool, open_run=None, workers: int = 1) -> tuple[TrackedRun | None, object]:
    """Every subcommand that builds a pipeline takes these steps, in this order, before it trains:

    1. ``check``: the spec's tracking store answers (a server that does not, an in-memory store);
    2. ``open_run()``: the MLflow writer process starts (it imports MLflow and prepares the store
       while this process imports torch and builds);
    3. ``workers > 1``: the local worker server starts (it imports the trainer meanwhile);
    4. each of ``variants`` (``(where, spec)``: ``where`` prefixes its error) is built, its
       components checked against their contracts and its key flow; a failure is one line, exit 2,
       and the run opened in step 2 is discarded (its writer ends; on Ctrl-C too).

    Returns the run (or ``None``) and the last built pipeline.
    """
    if check:
        try:
            check_store(spec.tracking.tracking_uri)
        except TrackingError as err:
            raise CommandError(str(err)) from None
    run = open_run() if open_run is not None else None
    pipeline = None
    try:
        if workers > 1:
            start_worker_server()
        from pgtorchrl.pipeline.build import build_pipeline  # deferred: torch, after the writer has started

        for where, variant in variants:
            try:
                pipeline = build_pipeline(variant)
            except Exception as err:  # noqa: BLE001 (any failure to build is the spec's, reported in one line)
                raise CommandError(f"{where}: {_reason(err)}") from None
        raise_swallowed_interrupt()  # torch's and MuJoCo's imports can swallow a Ctrl-C (see interrupts)
    except BaseException:  # a failed build, Ctrl-C: the writer of a run never opened ends with this command
        if run is not None:
            run.discard()
        raise
    return run, pipeline


def _new_run(spec, args):
    """``open_run`` for a train command: the command's MLflow run, its writer starting (no run exists yet)."""
    return lambda: TrackedRun(spec, args.pipeline.read_text()).start_writer()


def _local_workers(section) -> int:
    """The local worker processes a sweep or a study trains in (1: in this process, or on Ray)."""
    return section.workers if section.backend == "local" else 1


# --- train and validate -----------------------------------------------------------------------------
def _train_or_validate(args) -> int:
    if args.dry_run:
        args.command = "validate"
    overrides = list(args.overrides)
    if args.seeds:
        try:
            seeds = _parse_seeds(args.seeds)
        except ValueError:
            raise CommandError(
                f"--seeds {args.seeds[:40]!r}: write a range like 0-4 or a list like 0,3,7 (at most {MAX_SEEDS} seeds)"
            ) from None
        overrides.append(f"sweep={{values: {{seed: {seeds}}}}}")
    try:
        spec = load_spec(args.pipeline, overrides)
        variants = expand_sweep(spec, str(args.pipeline)) if spec.sweep is not None else None
    except SpecError as err:
        raise CommandError(str(err)) from None
    if variants is not None:
        return _sweep(args, spec, variants)
    if spec.tune is not None:
        return _tune(args, spec)
    training = args.command == "train"
    run, pipeline = _prelude(
        spec, [(str(args.pipeline), spec)], check=training, open_run=_new_run(spec, args) if training else None
    )
    if not training:
        print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), end="")
        print(f"# {args.pipeline}: valid; components built and key flow checked", file=sys.stderr)
        return 0
    return _train(spec, pipeline, run)


def _sweep(args, spec, variants) -> int:
    """A spec with ``sweep:``: validate builds every combination; train runs them all."""
    training = args.command == "train"
    run, _ = _prelude(
        spec,
        [(f"{args.pipeline}: sweep {label!r}", child) for label, child in variants],
        check=training,
        open_run=_new_run(spec, args) if training else None,
        workers=_local_workers(spec.sweep) if training else 1,
    )
    if not training:
        print("\n".join(label for label, _ in variants))
        print(
            f"# {args.pipeline}: valid; {len(variants)} sweep combinations built and key flow checked", file=sys.stderr
        )
        return 0
    from pgtorchrl.experiments.sweep import run_sweep  # deferred: torch (the trainer)
    from pgtorchrl.trainers.trainer import NonFiniteLossError

    try:
        results = run_sweep(spec, args.pipeline.read_text(), str(args.pipeline), run=run)
    except KeyboardInterrupt:
        raise CommandError("interrupted; the MLflow runs are marked KILLED", EXIT_INTERRUPTED) from None
    except (NonFiniteLossError, TrackingError) as err:
        raise CommandError(str(err), EXIT_TRAINING_FAILED) from None
    except Exception as err:  # noqa: BLE001 (any failure of a child run: one line, the runs marked FAILED)
        raise CommandError(f"sweep failed: {_reason(err)}; its runs are marked FAILED", EXIT_TRAINING_FAILED) from None
    for label, result in results.items():
        print(
            f"{label}: {result.iterations} iterations, {result.frames} frames, "
            f"{result.train_seconds:.1f} s; mlflow run {result.run_id}"
        )
    return 0


def _tune(args, spec) -> int:
    """A spec with ``tune:``: validate checks the space and builds the spec; train runs the study."""
    from pgtorchrl.experiments.tune import check_space, run_study  # deferred: torch (the trainer)

    try:
        check_space(spec, str(args.pipeline))
    except SpecError as err:
        raise CommandError(str(err)) from None
    training = args.command == "train"
    if importlib.util.find_spec("optuna") is None:  # checked before anything trains
        raise CommandError(f'{args.pipeline}: tune: needs Optuna: pip install -c constraints.txt -e ".[tune]"')
    _prelude(spec, [(str(args.pipeline), spec)], check=training, workers=_local_workers(spec.tune) if training else 1)
    if not training:
        print(
            f"# {args.pipeline}: valid; the search space's bounds validate, components built and key flow checked",
            file=sys.stderr,
        )
        return 0
    try:
        summary = run_study(spec, args.pipeline.read_text(), str(args.pipeline))
    except KeyboardInterrupt:
        raise CommandError(
            "interrupted; the running trials are marked FAIL in the study and their MLflow runs KILLED; "
            "run the same command to continue the study",
            EXIT_INTERRUPTED,
        ) from None
    except TrackingError as err:
        raise CommandError(str(err), EXIT_TRAINING_FAILED) from None
    except Exception as err:  # noqa: BLE001 (any failure of a trial: one line, the runs marked FAILED)
        raise CommandError(
            f"study failed: {_reason(err)}; its MLflow runs are marked FAILED", EXIT_TRAINING_FAILED
        ) from None
    states = ", ".join(f"{n} {s.lower()}" for s, n in summary.states.items())
    if summary.best_trial is None:
        print(f"study {summary.study_name}: {states}; no trial completed; mlflow run {summary.parent_run_id}")
    else:
        print(
            f"study {summary.study_name}: {states}; best trial {summary.best_trial}: {summary.best_value:.6g} "
            f"with {summary.best_params}; best.yaml logged to mlflow run {summary.parent_run_id}"
        )
    return 0


def _resume(args) -> int:
    from mlflow.exceptions import MlflowException  # deferred: mlflow

    from pgtorchrl.experiments.loading import resumable_run  # deferred: torch
    from pgtorchrl.trainers.checkpoint import exact

    _existing_store(writes=True)
    try:
        lock = run_lock(args.run_id)  # noqa: F841 (held until this process ends)
        spec, checkpoint = resumable_run(args.run_id, checkpoint_file=args.checkpoint)
    except MlflowException as err:
        raise CommandError(f"run {args.run_id!r}: {str(err).splitlines()[0]}") from None
    except (LookupError, ValueError, TrackingError, OSError) as err:  # SpecError is a ValueError
        raise CommandError(_reason(err)) from None
    frames = checkpoint["progress"]["frames"]
    if not exact(checkpoint):
        print(
            f"pgtorchrl: warning: {spec.collector.name!r} collection state is not checkpointed: the resumed run "
            f"restarts its episodes",
            file=sys.stderr,
        )
    tags = {"pgtorchrl.resumed_at_frames": str(frames)}
    run, pipeline = _prelude(
        spec,
        [(f"run {args.run_id}", spec)],
        check=False,
        open_run=lambda: TrackedRun(spec, resume_run_id=args.run_id, tags=tags).start_writer(),
    )
    print(f"resuming run {args.run_id} at {frames} frames", file=sys.stderr)
    return _train(spec, pipeline, run, checkpoint)


def _train(spec, pipeline, run, checkpoint: dict | None = None) -> int:
    from pgtorchrl.trainers.trainer import NonFiniteLossError, train  # deferred: torch

    try:
        result = train(spec, run.spec_text, pipeline, run, checkpoint)
    except KeyboardInterrupt as err:
        if str(err).startswith(CLOSING_INTERRUPT):  # it already says how the run ended
            raise CommandError(f"interrupted {err}", EXIT_INTERRUPTED) from None
        raise CommandError(f"interrupted; {run.outcome()}", EXIT_INTERRUPTED) from None
    except (NonFiniteLossError, TrackingError) as err:
        outcome = run.outcome()
        raise CommandError(str(err) if outcome in str(err) else f"{err}; {outcome}", EXIT_TRAINING_FAILED) from None
    except Exception as err:  # noqa: BLE001 (out of memory mid-run, an env that breaks ...: one line, not a traceback)
        raise CommandError(f"training failed: {_reason(err)}; {run.outcome()}", EXIT_TRAINING_FAILED) from None
    for line in run.models:  # "NAME URI [models:/REGISTERED/VERSION champion|-]"
        name, uri, *registered = line.split()
        if registered:
            version, champion = registered
            uri += f", registered as {version}" + (" (champion)" if champion == "champion" else "")
        print(f"# {name}: {uri}", file=sys.stderr)  # stdout keeps one line: the result
    status = "solved" if result.solved else "finished"
    ret = "n/a" if result.eval_return is None else f"{result.eval_return:.1f}"
    print(  # the last line, with the run id (scripts and the help read it there)
        f"{status}: eval/return_mean={ret} after {result.frames} frames, {result.train_seconds:.1f} s; "
        f"mlflow run {result.run_id}"
    )
    return 0


# --- the commands that read runs ----------------------------------------------------------------------
def _eval(args) -> int:
    if args.episodes < 1:
        raise CommandError(f"--episodes must be at least 1, got {args.episodes}")
    from mlflow.exceptions import MlflowException  # deferred: mlflow

    from pgtorchrl.experiments.loading import MissingArtifactError, evaluate_run  # deferred: torch

    _existing_store(writes=args.video)
    if args.video and args.run_id.startswith(("models:/", "runs:/")):
        raise CommandError("--video logs the episode to a run: give the run id (the model's source run)")
    try:
        returns = evaluate_run(args.run_id, args.episodes, device=args.device)
    except (TrackingError, MissingArtifactError) as err:
        raise CommandError(str(err)) from None
    except MlflowException as err:
        raise CommandError(f"run {args.run_id!r}: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise CommandError(
            f"run {args.run_id!r} has no logged actor ({err}): train with tracking.log_models: true"
        ) from None
    except ValueError as err:  # device: cuda on a machine without one
        raise CommandError(f"run {args.run_id!r}: {err} (or --device cpu)") from None
    print(
        f"eval/return_mean={returns.mean().item():.2f} eval/return_std={returns.std(unbiased=False).item():.2f} "
        f"over {returns.numel()} deterministic episodes"
    )
    if args.video:
        return _video(args.run_id)
    return 0


def _export(args) -> int:
    if args.format == "onnx" and importlib.util.find_spec("onnxscript") is None:
        raise CommandError('--format onnx needs the export extra: pip install -c constraints.txt -e ".[export]"')
    from mlflow.exceptions import MlflowException  # deferred: mlflow

    from pgtorchrl.deploy.export import OPSET, export_policy  # deferred: torch
    from pgtorchrl.deploy.policy import DeployedPolicy
    from pgtorchrl.experiments.loading import MissingArtifactError

    _existing_store(writes=False)
    try:
        policy = DeployedPolicy.load(args.source)
        path = export_policy(policy, args.out, args.format)
    except (TrackingError, MissingArtifactError) as err:
        raise CommandError(str(err)) from None
    except MlflowException as err:
        raise CommandError(f"{args.source!r}: {str(err).splitlines()[0]}") from None
    except (ValueError, OSError) as err:  # a policy kind with no exported form yet; a folder it cannot write
        raise CommandError(f"{args.source!r}: {err}") from None
    inputs = "; ".join(spec.describe() for spec in (*policy.io.inputs, *policy.io.memory))
    outputs = "; ".join([policy.io.action.describe(), *(f"next_{s.describe()}" for s in policy.io.memory[1:])])
    opset = f", opset {OPSET}" if args.format == "onnx" else ""
    print(f"{path}: {args.format}{opset}; inputs {inputs}; outputs {outputs}")
    return 0


def _video(run_id: str) -> int:
    from pgtorchrl.experiments.loading import rendering_run  # deferred: torch
    from pgtorchrl.record.video import log_episode_gif, record_episode

    try:
        env, actor = rendering_run(run_id)
    except ValueError as err:
        raise CommandError(str(err)) from None
    frames, total = record_episode(env, actor)
    env.close()
    path = log_episode_gif(run_id, frames)
    print(f"{path}: {len(frames)} frames, return {total:.1f}, logged to run {run_id}")
    return 0


def _compare(args) -> int:
    if bool(args.run_ids) == bool(args.experiment):
        raise CommandError("compare: name run ids or --experiment NAME (one of the two)")
    from mlflow.exceptions import MlflowException  # deferred: mlflow

    _existing_store(writes=False)
    client = mlflow_client()
    try:
        if args.experiment:
            experiment = client.get_experiment_by_name(args.experiment)
            if experiment is None:
                raise CommandError(f"compare: no experiment {args.experiment!r}")
            runs = [
                r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags
            ]
        else:
            runs = [client.get_run(run_id) for run_id in args.run_ids]
        curves = {}
        for run in runs:
            history = client.get_metric_history(run.info.run_id, args.metric)
            curves[f"{run.info.run_name} ({run.info.run_id[:8]})"] = [
                {"frames": m.step, args.metric: m.value} for m in history
            ]
    except MlflowException as err:
        raise CommandError(f"compare: {str(err).splitlines()[0]}") from None
    if not any(curves.values()):
        raise CommandError(f"compare: none of these runs logged {args.metric!r}")
    args.output.write_bytes(learning_curve_png(curves, title=args.metric, y=args.metric))
    print(f"{args.output}: {len(curves)} runs, {args.metric}")
    return 0


def _list(args) -> int:
    def fields(rows) -> None:
        for f in rows:
            print(f"      {f.name}: {f.type} ({f.default_text})" + (f"  {f.doc}" if f.doc and args.docs else ""))

    print(
        f"# names starting with {TORCHRL_PREFIX!r} are TorchRL's own classes (their constructor's "
        "keywords); the rest are pgtorchrl's"
    )
    for section in component_sections():
        print(f"{' / '.join((section.name, *section.also))}:")
        for component in section.components:
            print(f"  {component.name:<14} {component.summary}")
            fields(component.fields)
    print("spec keys:")
    fields(top_level_fields())
    for section in fixed_sections():
        print(f"{section.name}: {section.summary}")
        fields(section.fields)
    return 0


COMMANDS = {
    "train": _train_or_validate,
    "validate": _train_or_validate,
    "list": _list,
    "eval": _eval,
    "export": _export,
    "resume": _resume,
    "compare": _compare,
}


def main(argv: list[str] | None = None) -> int:
    """The command line: parses ``argv`` (default ``sys.argv[1:]``), runs its subcommand and
    returns the exit code; every failure a subcommand reports is one ``pgtorchrl: error:`` line."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    # MLflow's download bars are noise here, and their multiprocessing lock is a semaphore that
    # the resource tracker reports as leaked when the command leaves with os._exit
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _quiet_libraries()
    try:
        return COMMANDS[args.command](args)
    except CommandError as err:
        print(f"pgtorchrl: error: {err.message}", file=sys.stderr)
        return err.code


if __name__ == "__main__":
    raise SystemExit(main())

"""``pgtorchrl`` / ``python -m pgtorchrl``: train, validate and list pipelines.

Heavy libraries (torch, torchrl, mlflow) are imported only by the commands that need them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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
  pgtorchrl resume RUN_ID                                  continue a stopped run from its last checkpoint
  pgtorchrl compare --experiment vpg-cartpole              one PNG of several runs' learning curves
browse runs:
  mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --workers 1
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgtorchrl",
        description="Policy-gradient pipelines on TorchRL, tracked in MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,validate,list,eval,resume,compare}")
    for name, help_text in (("train", "train a pipeline (the default command)"), ("validate", "validate a spec, build its components, check key flow; no run")):
        cmd = sub.add_parser(name, help=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_argument("pipeline", type=Path, help="a pipeline spec (YAML), e.g. pipelines/vpg_cartpole.yaml")
        cmd.add_argument("overrides", nargs="*", metavar="key.path=value", help="override spec fields (values are YAML)")
        cmd.add_argument("--seeds", metavar="0-4", help="one child run per seed (0-4 or 0,3,7) under a parent run "
                         "that plots the mean and 95%% band of eval/return_mean")
        cmd.add_argument("--dry-run", action="store_true", help="validate only: the same as the validate command")
    sub.add_parser("list", help="list the registered components and their spec fields")
    ev = sub.add_parser("eval", help="evaluate a run's trained actor (deterministic episodes)",
                        epilog="example:\n  pgtorchrl eval 3f2c9d... --episodes 20", formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("run_id", help="an MLflow run id (see the MLflow UI or the train command's last line)")
    ev.add_argument("--episodes", type=int, default=10, help="episodes to run side by side (default 10)")
    ev.add_argument("--device", choices=["cpu", "cuda"], default=None,
                    help="where to run the actor and env (default: the run's own device)")
    ev.add_argument("--video", action="store_true", help="also record one rendered episode and log it to the run as video/episode.gif")
    res = sub.add_parser("resume", help="continue a stopped run from its newest checkpoint, into the same MLflow run",
                         epilog="example:\n  pgtorchrl resume 3f2c9d...   (a run left KILLED by Ctrl-C, FAILED, or RUNNING after a crash)",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    res.add_argument("run_id", help="the MLflow run id to continue")
    res.add_argument("--checkpoint", type=Path, default=None,
                     help="continue from this local checkpoint file (one a run saved when its tracking failed) "
                          "instead of the run's newest logged one")
    cmp = sub.add_parser("compare", help="plot several runs' learning curves in one PNG",
                         epilog="examples:\n  pgtorchrl compare RUN_A RUN_B\n  pgtorchrl compare --experiment vpg-cartpole --metric eval/return_mean",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cmp.add_argument("run_ids", nargs="*", help="MLflow run ids")
    cmp.add_argument("--experiment", help="every top-level run of this MLflow experiment")
    cmp.add_argument("--metric", default="rollout/episode_return", help="the metric to plot (default rollout/episode_return)")
    cmp.add_argument("--output", type=Path, default=Path("compare.png"), help="the PNG to write (default compare.png)")
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = _parser()
    commands = {"train", "validate", "list", "eval", "resume", "compare"}
    if argv and argv[0] not in commands and not argv[0].startswith("-"):
        argv = ["train", *argv]  # `pgtorchrl PIPELINE.yaml` means train
    if argv and argv[0] in ("train", "validate"):  # options may follow the key=value overrides
        options = [i for i, a in enumerate(argv) if a == "--seeds" or a.startswith("--seeds=")]
        argv = [a for a in argv if a != "--dry-run"] + (["--dry-run"] if "--dry-run" in argv else [])
        if options:
            i = options[0]
            if argv[i] == "--seeds" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
                print("pgtorchrl: error: --seeds needs a value: a range like 0-4 or a list like 0,3,7", file=sys.stderr)
                raise SystemExit(EXIT_BAD_INPUT)
            take = argv[i : i + (1 if "=" in argv[i] else 2)]
            argv = [argv[0], *take, *(a for j, a in enumerate(argv[1:], 1) if not i <= j < i + len(take))]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        raise SystemExit(EXIT_BAD_INPUT)
    return args


def _fail(message: str, code: int) -> int:
    print(f"pgtorchrl: error: {message}", file=sys.stderr)
    return code


def _reason(err: BaseException) -> str:
    """An exception as one short line: its message's first line (cut), with the exception's
    type where the message alone would not say what failed."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    text = text if len(text) <= 300 else text[:299] + "..."
    if text and (isinstance(err, (ValueError, TypeError, LookupError)) or type(err).__module__.startswith("pgtorchrl")):
        return text  # our own errors, and the builtins our checks raise, say what is wrong by themselves
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _build_failed(source, err: BaseException, run) -> int:
    """A valid spec whose components could not be built (a missing dependency, an allocation
    too large, a component that breaks its contract): one line, exit 2, no run left behind."""
    if run is not None:
        run.discard()
    return _fail(f"{source}: {_reason(err)}", EXIT_BAD_INPUT)


def _type_name(annotation) -> str:
    """``int``, ``'a' | 'b'``, ``list[int]``, ``float | None``: a field's type as a user writes it."""
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(map(repr, args))
    if origin is typing.Annotated:
        return _type_name(args[0])
    if args:
        inner = [_type_name(a) for a in args]
        return " | ".join(inner) if origin in (typing.Union, type(int | None)) else f"{origin.__name__}[{', '.join(inner)}]"
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


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


def _eval(args) -> int:
    if args.episodes < 1:
        return _fail(f"--episodes must be at least 1, got {args.episodes}", EXIT_BAD_INPUT)
    import warnings

    warnings.filterwarnings("ignore")
    from mlflow.exceptions import MlflowException

    from pgtorchrl.experiments.loading import evaluate_run
    from pgtorchrl.record.tracking import TrackingError, check_store

    try:
        check_store(None, must_exist=True)
        returns = evaluate_run(args.run_id, args.episodes, device=args.device)
    except TrackingError as err:
        return _fail(str(err), EXIT_BAD_INPUT)
    except MlflowException as err:
        return _fail(f"run {args.run_id!r}: {str(err).splitlines()[0]}", EXIT_BAD_INPUT)
    except OSError as err:
        return _fail(f"run {args.run_id!r} has no logged actor ({err}): train with tracking.log_models: true", EXIT_BAD_INPUT)
    except ValueError as err:  # device: cuda on a machine without one
        return _fail(f"run {args.run_id!r}: {err} (or --device cpu)", EXIT_BAD_INPUT)
    print(f"eval/return_mean={returns.mean().item():.2f} eval/return_std={returns.std(unbiased=False).item():.2f} "
          f"over {returns.numel()} deterministic episodes")
    if args.video:
        return _video(args.run_id)
    return 0


def _video(run_id: str) -> int:
    from pgtorchrl.experiments.loading import load_actor, load_run_spec
    from pgtorchrl.record.video import log_episode_gif, record_episode

    spec = load_run_spec(run_id)
    if spec.env.name not in ("gym", "gym_native"):
        return _fail(f"--video renders gymnasium envs (env.name: gym or gym_native); run {run_id} used {spec.env.name!r}",
                     EXIT_BAD_INPUT)
    frames, total = record_episode(spec.env.env_id, load_actor(run_id, device="cpu"), seed=spec.seed)
    path = log_episode_gif(run_id, frames)
    print(f"{path}: {len(frames)} frames, return {total:.1f}, logged to run {run_id}")
    return 0


def _compare(args) -> int:
    if bool(args.run_ids) == bool(args.experiment):
        return _fail("compare: name run ids or --experiment NAME (one of the two)", EXIT_BAD_INPUT)
    from mlflow.exceptions import MlflowException

    from pgtorchrl.record.plots import learning_curve_png
    from pgtorchrl.record.tracking import TrackingError, check_store, mlflow_client
    from pgtorchrl.pipeline.schema import TrackingConfig

    try:
        check_store(None, must_exist=True)  # reads runs: a wrong folder is said, not given an empty store
    except TrackingError as err:
        return _fail(str(err), EXIT_BAD_INPUT)
    client = mlflow_client()
    try:
        if args.experiment:
            experiment = client.get_experiment_by_name(args.experiment)
            if experiment is None:
                return _fail(f"compare: no experiment {args.experiment!r}", EXIT_BAD_INPUT)
            runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
        else:
            runs = [client.get_run(run_id) for run_id in args.run_ids]
        curves = {}
        for run in runs:
            history = client.get_metric_history(run.info.run_id, args.metric)
            curves[f"{run.info.run_name} ({run.info.run_id[:8]})"] = [{"frames": m.step, args.metric: m.value} for m in history]
    except MlflowException as err:
        return _fail(f"compare: {str(err).splitlines()[0]}", EXIT_BAD_INPUT)
    if not any(curves.values()):
        return _fail(f"compare: none of these runs logged {args.metric!r}", EXIT_BAD_INPUT)
    args.output.write_bytes(learning_curve_png(curves, TrackingConfig(), title=args.metric, y=args.metric))
    print(f"{args.output}: {len(curves)} runs, {args.metric}")
    return 0


def _list() -> int:
    from pgtorchrl.components import REGISTRIES, TORCHRL_PREFIX, TRANSFORMS

    seen = set()
    print(f"# names starting with {TORCHRL_PREFIX!r} are TorchRL's own classes (their constructor's keywords); the rest are pgtorchrl's")
    for registry in [*REGISTRIES.values(), TRANSFORMS]:
        if registry.kind in seen:
            continue
        seen.add(registry.kind)
        print(f"{registry.kind}:" if registry is not TRANSFORMS else "transform (a list under env.transforms of env 'gym'):")
        for entry in registry.entries():
            print(f"  {entry.name:<14} {entry.summary}")
            for field, info in entry.model.model_fields.items():
                if field != "name":
                    default = "required" if info.is_required() else f"default {info.default!r}"
                    print(f"      {field}: {_type_name(info.annotation)} ({default})")
    return 0


def _store_problem(spec) -> str | None:
    """What is wrong with the spec's tracking store (a server that does not answer, an
    in-memory store), checked before anything trains; ``None`` when it is usable."""
    from pgtorchrl.record.tracking import TrackingError, check_store

    try:
        check_store(spec.tracking.tracking_uri)
    except TrackingError as err:
        return str(err)
    return None


def _started_run(spec, args):
    """The command's MLflow run, its writer process already starting (no run exists yet)."""
    from pgtorchrl.record.tracking import TrackedRun

    return TrackedRun(spec, args.pipeline.read_text()).start_writer()


def _sweep(args, spec, variants) -> int:
    """A spec with ``sweep:``: validate builds every combination; train runs them all."""
    run = None
    if args.command == "train":
        problem = _store_problem(spec)
        if problem:
            return _fail(problem, EXIT_BAD_INPUT)
        # the parent run's MLflow writer, and the server the workers fork from, import their
        # libraries in their own processes while this one imports torch
        run = _started_run(spec, args)
        if spec.sweep.workers > 1 and spec.sweep.backend == "local":
            from pgtorchrl.experiments.workers import start_worker_server

            start_worker_server()
    import warnings

    warnings.filterwarnings("ignore", module="torchrl")
    from pgtorchrl.pipeline.build import build_pipeline

    try:
        for label, child in variants:
            build_pipeline(child)
    except Exception as err:  # noqa: BLE001 (any failure to build is the spec's, reported in one line)
        return _build_failed(f"{args.pipeline}: sweep {label!r}", err, run)
    if args.command == "validate":
        print("\n".join(label for label, _ in variants))
        print(f"# {args.pipeline}: valid; {len(variants)} sweep combinations built and key flow checked", file=sys.stderr)
        return 0
    from pgtorchrl.experiments.sweep import run_sweep
    from pgtorchrl.record.tracking import TrackingError
    from pgtorchrl.trainers.trainer import NonFiniteLossError

    try:
        results = run_sweep(spec, args.pipeline.read_text(), str(args.pipeline), run=run)
    except KeyboardInterrupt:
        return _fail("interrupted; the MLflow runs are marked KILLED", EXIT_INTERRUPTED)
    except (NonFiniteLossError, TrackingError) as err:
        return _fail(str(err), EXIT_TRAINING_FAILED)
    except Exception as err:  # noqa: BLE001
        return _fail(f"sweep failed: {_reason(err)}; its runs are marked FAILED", EXIT_TRAINING_FAILED)
    for label, result in results.items():
        print(f"{label}: {result.iterations} iterations, {result.frames} frames, {result.train_seconds:.1f} s; mlflow run {result.run_id}")
    return 0


def _tune(args, spec) -> int:
    """A spec with ``tune:``: validate checks the space and builds the spec; train runs the study."""
    from pgtorchrl.config.spec_file import SpecError
    from pgtorchrl.experiments.tune import check_space

    try:
        check_space(spec, str(args.pipeline))
    except SpecError as err:
        return _fail(str(err), EXIT_BAD_INPUT)
    if args.command == "train":
        problem = _store_problem(spec)
        if problem:
            return _fail(problem, EXIT_BAD_INPUT)
        if spec.tune.workers > 1 and spec.tune.backend == "local":
            from pgtorchrl.experiments.workers import start_worker_server

            start_worker_server()
    import warnings

    warnings.filterwarnings("ignore", module="torchrl")
    try:
        import optuna  # noqa: F401 (checked before anything trains)
    except ImportError:
        return _fail(f'{args.pipeline}: tune: needs Optuna: pip install -c constraints.txt -e ".[tune]"', EXIT_BAD_INPUT)
    from pgtorchrl.pipeline.build import build_pipeline

    try:
        build_pipeline(spec)
    except Exception as err:  # noqa: BLE001 (any failure to build is the spec's, reported in one line)
        return _build_failed(args.pipeline, err, None)
    if args.command == "validate":
        print(f"# {args.pipeline}: valid; the search space's bounds validate, components built and key flow checked",
              file=sys.stderr)
        return 0
    from pgtorchrl.record.tracking import TrackingError
    from pgtorchrl.experiments.tune import run_study

    try:
        summary = run_study(spec, args.pipeline.read_text(), str(args.pipeline))
    except KeyboardInterrupt:
        return _fail("interrupted; the running trials are marked FAIL in the study and their MLflow runs KILLED; "
                     "run the same command to continue the study", EXIT_INTERRUPTED)
    except TrackingError as err:
        return _fail(str(err), EXIT_TRAINING_FAILED)
    except Exception as err:  # noqa: BLE001
        return _fail(f"study failed: {_reason(err)}; its MLflow runs are marked FAILED", EXIT_TRAINING_FAILED)
    states = ", ".join(f"{n} {s.lower()}" for s, n in summary.states.items())
    if summary.best_trial is None:
        print(f"study {summary.study_name}: {states}; no trial completed; mlflow run {summary.parent_run_id}")
    else:
        print(f"study {summary.study_name}: {states}; best trial {summary.best_trial}: {summary.best_value:.6g} "
              f"with {summary.best_params}; best.yaml logged to mlflow run {summary.parent_run_id}")
    return 0


def _resume(args) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    from mlflow.exceptions import MlflowException

    from pgtorchrl.trainers.checkpoint import CheckpointError, exact
    from pgtorchrl.experiments.loading import resumable_run
    from pgtorchrl.pipeline.build import build_pipeline
    from pgtorchrl.record.tracking import TrackedRun, TrackingError, check_store, run_lock

    try:
        check_store(None, must_exist=True)
        lock = run_lock(args.run_id)  # noqa: F841 (held until this process ends)
        spec, checkpoint = resumable_run(args.run_id, checkpoint_file=args.checkpoint)
    except MlflowException as err:
        return _fail(f"run {args.run_id!r}: {str(err).splitlines()[0]}", EXIT_BAD_INPUT)
    except (LookupError, ValueError, TrackingError, OSError) as err:  # SpecError is a ValueError
        return _fail(_reason(err), EXIT_BAD_INPUT)
    frames = checkpoint["progress"]["frames"]
    if not exact(checkpoint):
        print(f"pgtorchrl: warning: {spec.collector.name!r} collection state is not checkpointed: the resumed run "
              f"restarts its episodes", file=sys.stderr)
    run = TrackedRun(spec, resume_run_id=args.run_id, tags={"pgtorchrl.resumed_at_frames": str(frames)}).start_writer()
    try:
        pipeline = build_pipeline(spec)
    except Exception as err:  # noqa: BLE001
        return _build_failed(f"run {args.run_id}", err, run)
    print(f"resuming run {args.run_id} at {frames} frames", file=sys.stderr)
    try:
        return _train(spec, pipeline, run, checkpoint)
    except CheckpointError as err:
        return _fail(f"run {args.run_id}: {err}", EXIT_BAD_INPUT)


def _sigterm_as_interrupt() -> None:
    """SIGTERM (a scheduler stopping the job) ends a run like Ctrl-C: marked KILLED, clean exit."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    # MLflow's download bars are noise here, and their multiprocessing lock is a semaphore that
    # the resource tracker reports as leaked when the command leaves with os._exit
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if argv is None:  # the real command line, not an in-process call
        _sigterm_as_interrupt()
    if args.command == "list":
        return _list()
    if args.command == "eval":
        return _eval(args)
    if args.command == "compare":
        return _compare(args)
    if args.command == "resume":
        return _resume(args)
    if getattr(args, "dry_run", False):
        args.command = "validate"
    from pgtorchrl.config.spec_file import SpecError
    from pgtorchrl.pipeline.parse import expand_sweep, load_spec

    overrides = list(args.overrides)
    if getattr(args, "seeds", None):
        try:
            seeds = _parse_seeds(args.seeds)
        except ValueError:
            return _fail(f"--seeds {args.seeds[:40]!r}: write a range like 0-4 or a list like 0,3,7 "
                         f"(at most {MAX_SEEDS} seeds)", EXIT_BAD_INPUT)
        overrides.append(f"sweep={{values: {{seed: {seeds}}}}}")
    try:
        spec = load_spec(args.pipeline, overrides)
        variants = expand_sweep(spec, str(args.pipeline)) if spec.sweep is not None else None
    except SpecError as err:
        return _fail(str(err), EXIT_BAD_INPUT)
    if variants is not None:
        return _sweep(args, spec, variants)
    if spec.tune is not None:
        return _tune(args, spec)
    run = None
    if args.command == "train":
        problem = _store_problem(spec)
        if problem:
            return _fail(problem, EXIT_BAD_INPUT)
        run = _started_run(spec, args)  # MLflow starts up in its own process while torch and the pipeline load here
    import warnings

    warnings.filterwarnings("ignore", module="torchrl")
    from pgtorchrl.pipeline.build import build_pipeline

    try:
        pipeline = build_pipeline(spec)
    except Exception as err:  # noqa: BLE001 (any failure to build is the spec's, reported in one line)
        return _build_failed(args.pipeline, err, run)
    if args.command == "validate":
        import yaml

        print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), end="")
        print(f"# {args.pipeline}: valid; components built and key flow checked", file=sys.stderr)
        return 0
    return _train(spec, pipeline, run)


def _train(spec, pipeline, run, checkpoint: dict | None = None) -> int:
    from pgtorchrl.record.tracking import TrackingError
    from pgtorchrl.trainers.trainer import NonFiniteLossError, train

    try:
        result = train(spec, run.spec_text, pipeline, run, checkpoint)
    except KeyboardInterrupt:
        return _fail(f"interrupted; {run.outcome()}", EXIT_INTERRUPTED)
    except (NonFiniteLossError, TrackingError) as err:
        outcome = run.outcome()
        return _fail(str(err) if outcome in str(err) else f"{err}; {outcome}", EXIT_TRAINING_FAILED)
    except Exception as err:  # noqa: BLE001 (out of memory mid-run, an env that breaks ...: one line, not a traceback)
        return _fail(f"training failed: {_reason(err)}; {run.outcome()}", EXIT_TRAINING_FAILED)
    status = "solved" if result.solved else "finished"
    ret = "n/a" if result.eval_return is None else f"{result.eval_return:.1f}"
    print(
        f"{status}: eval/return_mean={ret} after {result.frames} frames, {result.train_seconds:.1f} s; "
        f"mlflow run {result.run_id}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

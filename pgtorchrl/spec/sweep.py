"""Sweeps: one parent MLflow run, one child run per combination of the spec's ``sweep:`` values."""
from __future__ import annotations

import os
import pickle
import signal
import tempfile
import time
from pathlib import Path

from pgtorchrl.record.plots import curve_csv, learning_curve_png, seed_band_png
from pgtorchrl.spec.schema import Spec, expand_sweep, parse_spec
from pgtorchrl.record.tracking import TrackedRun, resolve_tracking_uri
from pgtorchrl.trainers.trainer import TrainResult, train
from pgtorchrl.spec.workers import workers_context

__all__ = ["run_sweep"]


def run_sweep(
    spec: Spec, spec_text: str | None = None, source: str = "<spec>", run: TrackedRun | None = None
) -> dict[str, TrainResult]:
    """Trains every combination as a child run of one parent run, which gets the combined
    ``learning_curves.png`` and ``curves.csv`` (a ``label`` column per combination).

    Every combination is validated before the parent run opens. ``run``: the parent's
    :class:`TrackedRun`, when the caller started its writer early.
    """
    children = expand_sweep(spec, source)
    with run or TrackedRun(spec, spec_text) as parent:
        parent_id = parent.wait_opened()
        if spec.sweep.backend == "ray":
            results = _train_on_ray(children, spec_text, parent_id, spec, source)
        elif spec.sweep.workers == 1:
            results = {label: _train_child(child, spec_text, parent_id, label) for label, child in children}
        else:
            results = _train_in_processes(children, spec_text, parent_id, spec.sweep.workers, source)
        curves = {label: result.curve for label, result in results.items()}
        parent.log_bytes(learning_curve_png(curves, spec.tracking, title=spec.experiment), "learning_curves.png")
        rows = [{"label": label, **row} for label, curve in curves.items() for row in curve]
        parent.log_text(curve_csv(rows), "curves.csv")
        parent.set_tag("sweep.children", ",".join(r.run_id for r in results.values()))
        if list(spec.sweep.values) == ["seed"]:
            band = seed_band(results.values())
            for frames, stats in band.items():
                parent.log_metrics(stats, step=frames)
            parent.log_bytes(seed_band_png(band, spec.experiment), "eval_across_seeds.png")
    return results


def _train_child(child: Spec, spec_text: str | None, parent_id: str, label: str) -> TrainResult:
    """One combination, as a child run of ``parent_id``."""
    run = TrackedRun(child, spec_text, tags={"mlflow.parentRunId": parent_id, "sweep.label": label}, run_name=label)
    return train(child, spec_text, run=run)


def _ray_child(raw: dict, source: str, spec_text: str | None, parent_id: str, label: str, cwd: str,
               tracking_uri: str) -> TrainResult:
    """A Ray task: one combination as a child run, in the driver's folder and MLflow store."""
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative stores (sqlite:///mlruns/...) mean the driver's folder
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    return _train_child(parse_spec(raw, source), spec_text, parent_id, label)


def _train_on_ray(children, spec_text, parent_id: str, spec: Spec, source: str) -> dict[str, TrainResult]:
    """Every combination as a Ray task, ``sweep.workers`` at a time (:mod:`pgtorchrl.spec.remote`)."""
    from pgtorchrl.spec.remote import ray_map  # Ray is optional: imported when a spec asks for it

    uri = resolve_tracking_uri(spec.tracking.tracking_uri)
    jobs = [(child.model_dump(mode="json"), source, spec_text, parent_id, label, os.getcwd(), uri) for label, child in children]
    results = ray_map(_ray_child, jobs, spec.sweep.workers, spec.sweep.address)
    return {label: result for (label, _), result in zip(children, results)}


def _worker(job: tuple) -> None:
    """A sweep worker process: ``job`` is ``(raw spec, source, spec_text, parent_id, label,
    out)``; it trains that child run (validating the spec again, which imports its plugins)
    and pickles ``("ok", TrainResult)`` or ``("error", exception)`` to the file ``out``."""
    raw, source, spec_text, parent_id, label, out = job
    try:
        outcome = ("ok", _train_child(parse_spec(raw, source), spec_text, parent_id, label))
    except BaseException as err:  # Ctrl-C included: the child run is already marked KILLED
        try:
            pickle.dumps(err)
        except Exception:
            err = RuntimeError(f"{type(err).__name__}: {err}")
        outcome = ("error", err)
    Path(out).write_bytes(pickle.dumps(outcome))
    raise SystemExit(0 if outcome[0] == "ok" else 1)


def _train_in_processes(children, spec_text, parent_id: str, workers: int, source: str) -> dict[str, TrainResult]:
    """Trains the combinations in up to ``workers`` processes at once (:mod:`pgtorchrl.spec.workers`);
    the results come back in the sweep's order.
    The first failure stops the others (SIGINT: each running child ends KILLED) and starts no
    more; Ctrl-C reaches every worker of the terminal's process group the same way."""
    context = workers_context()
    pending, running, results = list(enumerate(children)), {}, {}
    with tempfile.TemporaryDirectory(prefix="pgtorchrl-sweep-") as tmp:
        stop_others = True
        try:
            while pending or running:
                while pending and len(running) < workers:
                    index, (label, child) = pending.pop(0)
                    out = Path(tmp) / f"{index}.pkl"
                    job = (child.model_dump(mode="json"), source, spec_text, parent_id, label, str(out))
                    proc = context.Process(target=_worker, args=(job,), name=f"pgtorchrl-sweep-{index}")
                    proc.start()
                    running[label] = (proc, out)
                time.sleep(0.1)
                for label, (proc, out) in list(running.items()):
                    if proc.exitcode is None:
                        continue
                    del running[label]
                    if not out.exists():
                        raise RuntimeError(f"sweep {label!r}: its worker process died (exit code {proc.exitcode})")
                    status, value = pickle.loads(out.read_bytes())
                    if status == "error":
                        raise value
                    results[label] = value
        except KeyboardInterrupt as err:
            # a terminal's Ctrl-C already reached every worker (a second one could cut short
            # their cleanup); a SIGTERM sent to this process alone did not
            stop_others = str(err).startswith("signal")
            raise
        finally:
            for proc, _ in running.values():  # stop the others: each marks its run KILLED
                if stop_others and proc.exitcode is None:
                    os.kill(proc.pid, signal.SIGINT)
            for proc, _ in running.values():
                proc.join(timeout=60)
                if proc.exitcode is None:
                    proc.kill()
                    proc.join()
    return {label: results[label] for label, _ in children}


def seed_band(results) -> dict[int, dict[str, float]]:
    """Per frame count, the mean of ``eval/return_mean`` across the seeds evaluated there and a
    95% confidence band (normal approximation, ``1.96 * sd / sqrt(n)``)."""
    by_frames: dict[int, list[float]] = {}
    for result in results:
        for row in result.curve:
            if "eval/return_mean" in row:
                by_frames.setdefault(int(row["frames"]), []).append(row["eval/return_mean"])
    band = {}
    for frames, values in sorted(by_frames.items()):
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        half = 1.96 * sd / len(values) ** 0.5
        band[frames] = {"eval/return_mean": mean, "eval/return_ci95_low": mean - half,
                        "eval/return_ci95_high": mean + half, "eval/seeds": float(len(values))}
    return band

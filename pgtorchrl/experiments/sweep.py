"""Sweeps: one parent MLflow run, one child run per combination of the spec's ``sweep:`` values."""

from __future__ import annotations

from typing import Any

from pgtorchrl.experiments.workers import InlinePool, ProcessPool
from pgtorchrl.pipeline.parse import expand_sweep, parse_spec
from pgtorchrl.pipeline.schema import Spec
from pgtorchrl.record.plots import curve_csv, learning_curve_png, plot_options, seed_band_png
from pgtorchrl.record.tracking import TrackedRun, resolve_tracking_uri
from pgtorchrl.trainers.trainer import TrainResult, train

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
        results = _train_in_pool(children, spec_text, parent_id, source, _pool(spec))
        curves = {label: result.curve for label, result in results.items()}
        parent.log_bytes(
            learning_curve_png(curves, title=spec.experiment, **plot_options(spec.tracking.model_dump())),
            "learning_curves.png",
        )
        rows: list[dict[str, Any]] = [{"label": label, **row} for label, curve in curves.items() for row in curve]
        parent.log_text(curve_csv(rows), "curves.csv")
        parent.set_tag("sweep.children", ",".join(r.run_id for r in results.values()))
        if spec.sweep is not None and list(spec.sweep.values) == ["seed"]:
            band = seed_band(results.values())
            for frames, stats in band.items():
                parent.log_metrics(stats, step=frames)
            parent.log_bytes(seed_band_png(band, spec.experiment), "eval_across_seeds.png")
    return results


def _train_child(child: Spec, spec_text: str | None, parent_id: str, label: str) -> TrainResult:
    """One combination, as a child run of ``parent_id``."""
    run = TrackedRun(child, spec_text, tags={"mlflow.parentRunId": parent_id, "sweep.label": label}, run_name=label)
    return train(child, spec_text, run=run)


def _train_job(raw: dict, source: str, spec_text: str | None, parent_id: str, label: str) -> TrainResult:
    """A pool's job: one combination from its plain mapping (validated again, which imports its
    plugins in a worker process), as a child run of ``parent_id``."""
    return _train_child(parse_spec(raw, source), spec_text, parent_id, label)


def _pool(spec: Spec):
    """Where the children train: this process, local worker processes, or Ray tasks."""
    sweep = spec.sweep
    if sweep is None or (sweep.workers == 1 and sweep.backend == "local"):
        return InlinePool()
    if sweep.backend == "ray":
        from pgtorchrl.experiments.remote import RayPool  # Ray is optional: imported when a spec asks for it

        return RayPool(sweep.workers, sweep.address, resolve_tracking_uri(spec.tracking.tracking_uri))
    return ProcessPool(sweep.workers) if sweep.workers > 1 else InlinePool()


def _train_in_pool(children, spec_text, parent_id: str, source: str, pool) -> dict[str, TrainResult]:
    """Trains the combinations in ``pool`` (:mod:`pgtorchrl.experiments.workers`); the results come back in
    the sweep's order. The first failure stops the others (each running child ends KILLED) and
    starts no more; a terminal's Ctrl-C has already reached every local worker the same way."""
    pending, results = list(children), {}
    send_interrupt = True
    try:
        while pending or pool.busy:
            while pending and pool.free:
                label, child = pending.pop(0)
                pool.submit(label, _train_job, (child.model_dump(mode="json"), source, spec_text, parent_id, label))
            label, (status, value) = pool.wait()
            if status == "error":
                raise value
            results[label] = value
    except KeyboardInterrupt as err:
        # a terminal's Ctrl-C already reached every worker (a second one could cut short their
        # cleanup); a SIGTERM sent to this process alone ("signal 15") did not
        send_interrupt = str(err).startswith("signal")
        raise
    finally:
        pool.stop(send_interrupt)
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
        band[frames] = {
            "eval/return_mean": mean,
            "eval/return_ci95_low": mean - half,
            "eval/return_ci95_high": mean + half,
            "eval/seeds": float(len(values)),
        }
    return band

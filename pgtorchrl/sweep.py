"""Sweeps: one parent MLflow run, one child run per combination of the spec's ``sweep:`` values."""
from __future__ import annotations

from pgtorchrl.plots import curve_csv, learning_curve_png, seed_band_png
from pgtorchrl.spec import Spec, expand_sweep
from pgtorchrl.tracking import TrackedRun
from pgtorchrl.trainer import TrainResult, train

__all__ = ["run_sweep"]


def run_sweep(spec: Spec, spec_text: str | None = None, source: str = "<spec>") -> dict[str, TrainResult]:
    """Trains every combination as a child run of one parent run, which gets the combined
    ``learning_curves.png`` and ``curves.csv`` (a ``label`` column per combination).

    Every combination is validated before the parent run opens.
    """
    children = expand_sweep(spec, source)
    results: dict[str, TrainResult] = {}
    with TrackedRun(spec, spec_text) as parent:
        parent_id = parent.wait_opened()
        for label, child in children:
            run = TrackedRun(child, spec_text, tags={"mlflow.parentRunId": parent_id, "sweep.label": label}, run_name=label)
            results[label] = train(child, spec_text, run=run)
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

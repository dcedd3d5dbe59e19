"""Sweeps: one parent MLflow run, one child run per combination of the spec's ``sweep:`` values."""
from __future__ import annotations

from pgtorchrl.plots import curve_csv, learning_curve_png
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
    return results

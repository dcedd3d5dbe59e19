"""Learning-curve figures (PNG) and their data (CSV) for MLflow artifacts."""

from __future__ import annotations

import csv
import io
from typing import Any, Mapping, Sequence

__all__ = ["learning_curve_png", "plot_options", "seed_band_png", "curve_csv"]

Y = "rollout/episode_return"


def curve_csv(curve: Sequence[Mapping[str, Any]]) -> str:
    """Every iteration's metrics as CSV (one column per metric, blank where absent)."""
    columns: list[str] = []
    for row in curve:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(curve)
    return out.getvalue()


def learning_curve_png(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    title: str | None = None,
    y: str = Y,
    *,
    curve_x: str = "frames",
    reference_return: float | None = None,
    reference_label: str = "reference",
) -> bytes:
    """One line per labelled curve of metric ``y`` (a band of +-1 standard error where
    ``<y>_se`` exists), x = ``frames`` or ``iteration`` as ``curve_x`` says, and
    ``reference_return`` as a dashed line labelled ``reference_label`` (the spec's
    ``tracking:`` fields of those names, :func:`plot_options`)."""
    x_key = curve_x
    fig, ax = _axes()
    for label, curve in curves.items():
        rows = [r for r in curve if y in r]
        xs = [r[x_key] for r in rows]
        ys = [r[y] for r in rows]
        (line,) = ax.plot(xs, ys, label=label, linewidth=1.2)
        if rows and all(f"{y}_se" in r for r in rows):
            se = [r[f"{y}_se"] for r in rows]
            ax.fill_between(
                xs, [a - b for a, b in zip(ys, se)], [a + b for a, b in zip(ys, se)], color=line.get_color(), alpha=0.2
            )
    if reference_return is not None:
        ax.axhline(reference_return, linestyle="--", color="gray", label=reference_label)
    ax.set_xlabel("episode" if x_key == "iteration" else "env frames")
    ax.set_ylabel("total reward per episode" if x_key == "iteration" and y == Y else y)
    return _png(fig, ax, title)


def plot_options(tracking: Mapping[str, Any]) -> dict[str, Any]:
    """The ``tracking:`` fields :func:`learning_curve_png` draws with, from the section as a mapping."""
    return {k: tracking[k] for k in ("curve_x", "reference_return", "reference_label")}


def seed_band_png(band: Mapping[int, Mapping[str, float]], title: str) -> bytes:
    """The mean of ``eval/return_mean`` across seeds with its 95% band, x = env frames."""
    fig, ax = _axes()
    x = list(band)
    ax.plot(x, [b["eval/return_mean"] for b in band.values()], label="mean over seeds")
    ax.fill_between(
        x,
        [b["eval/return_ci95_low"] for b in band.values()],
        [b["eval/return_ci95_high"] for b in band.values()],
        alpha=0.25,
        label="95% confidence band",
    )
    ax.set_xlabel("env frames")
    ax.set_ylabel("eval/return_mean")
    return _png(fig, ax, title)


def _axes():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4.5), dpi=110)


def _png(fig, ax, title: str | None) -> bytes:
    import matplotlib.pyplot as plt

    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()

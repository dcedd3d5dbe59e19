"""Compare the short-corridor runs with Sutton & Barto's Figures 13.1 and 13.2.

Reads the newest sweep (parent) run of the experiments "short-corridor-reinforce" and
"short-corridor-baseline" from MLflow (its curves.csv artifact: per-episode total reward
averaged over the 100 runs) and prints the figures the book's curves show:

- the initial policy (P(right) = 0.05) starts near J(0.05) = -82.1 (within 3 standard errors);
- REINFORCE at 2^-13: mean over the last 100 episodes within 1.5 of v*(s0) = -11.66;
  2^-12 learns faster at first, 2^-14 slower (means over episodes 1-200);
- REINFORCE with baseline: every 100-episode window from episode 200 on within 1.0 of -11.66,
  and much faster than REINFORCE at 2^-13 over the first 200 episodes.

    python -m pgtorchrl pipelines/short_corridor_reinforce.yaml
    python -m pgtorchrl pipelines/short_corridor_baseline.yaml
    python benchmarks/short_corridor_check.py
    python benchmarks/short_corridor_check.py --out benchmarks/results   # also short_corridor.txt and the two figures

``--out DIR`` writes what it prints to ``DIR/short_corridor.txt`` and the sweeps' own figures
(their ``learning_curves.png``) to ``DIR/short_corridor_figure_13_1.png`` and ``..._13_2.png``:
the documentation's benchmark page shows those files.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from mlflow.tracking import MlflowClient

from pgtorchrl.envs.custom.short_corridor import OPTIMAL_VALUE, corridor_value
from pgtorchrl.record.tracking import mlflow_client


def curves(
    client: MlflowClient, experiment: str, figure: Path | None = None
) -> tuple[str, dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """The newest finished sweep of ``experiment``: its run id and, per label, the mean episode
    return, P(right) and the return's standard error at each episode; its figure copied to
    ``figure`` when given."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"no experiment {experiment!r}: run its pipeline first")
    parents = [
        r
        for r in client.search_runs([exp.experiment_id], order_by=["start_time DESC"])
        if "mlflow.parentRunId" not in r.data.tags and r.info.status == "FINISHED"
    ]
    if not parents:
        raise SystemExit(f"no finished sweep run in {experiment!r}")
    run = parents[0]
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(client.download_artifacts(run.info.run_id, "curves.csv", tmp)).read_text()
        if figure is not None:
            figure.write_bytes(
                Path(client.download_artifacts(run.info.run_id, "learning_curves.png", tmp)).read_bytes()
            )
    returns, p_right, se = defaultdict(list), defaultdict(list), defaultdict(list)
    for row in csv.DictReader(io.StringIO(text)):
        returns[row["label"]].append(float(row["rollout/episode_return"]))
        p_right[row["label"]].append(float(row["rollout/action_0_prob"]))
        se[row["label"]].append(float(row["rollout/episode_return_se"]))
    return run.info.run_id, returns, p_right, se


def mean(values) -> float:
    return sum(values) / len(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=None, help="write the report and the two figures to this folder")
    args = parser.parse_args()
    client = mlflow_client()
    ok = True
    lines: list[str] = []

    def print(text: str) -> None:
        lines.append(text)
        sys.stdout.write(text + "\n")

    def check(text: str, passed: bool) -> None:
        nonlocal ok
        ok &= passed
        print(f"  [{'ok' if passed else 'FAIL'}] {text}")

    def figure(number: str) -> Path | None:
        return None if args.out is None else args.out / f"short_corridor_figure_{number}.png"

    run_id, ret, p, se = curves(client, "short-corridor-reinforce", figure("13_1"))
    print(f"Figure 13.1 (run {run_id}); v*(s0) = {OPTIMAL_VALUE:.2f}")
    for label, r in ret.items():
        print(
            f"  {label}: episode 1 {r[0]:.1f}, episodes 1-200 {mean(r[:200]):.2f}, "
            f"last 100 {mean(r[-100:]):.2f}, final P(right) {p[label][-1]:.3f}"
        )
    a12, a13, a14 = (ret[f"alpha = 2^-{k}"] for k in (12, 13, 14))
    first, first_se = a13[0], se["alpha = 2^-13"][0]
    start = corridor_value(0.05)
    check(
        f"first episode (P(right) = 0.05) near J(0.05) = {start:.1f}: {first:.1f} +- {first_se:.1f} "
        "(s.e. over 100 runs)",
        abs(first - start) <= 3 * first_se,
    )
    check(
        f"2^-13 last 100 episodes within 1.5 of v*: {mean(a13[-100:]):.2f}",
        abs(mean(a13[-100:]) - OPTIMAL_VALUE) <= 1.5,
    )
    check(
        f"2^-12 faster than 2^-13 faster than 2^-14 over episodes 1-200: "
        f"{mean(a12[:200]):.2f} > {mean(a13[:200]):.2f} > {mean(a14[:200]):.2f}",
        mean(a12[:200]) > mean(a13[:200]) > mean(a14[:200]),
    )

    run_id, ret, p, se = curves(client, "short-corridor-baseline", figure("13_2"))
    print(f"Figure 13.2 (run {run_id})")
    base = next(r for label, r in ret.items() if "baseline" in label)
    plain = next(r for label, r in ret.items() if "baseline" not in label)
    windows = [mean(base[i : i + 100]) for i in range(199, len(base) - 99)]
    worst = max(abs(w - OPTIMAL_VALUE) for w in windows)
    print(
        f"  with baseline: episodes 1-200 {mean(base[:200]):.2f}, last 100 {mean(base[-100:]):.2f}; "
        f"REINFORCE 2^-13: episodes 1-200 {mean(plain[:200]):.2f}, last 100 {mean(plain[-100:]):.2f}"
    )
    check(f"every 100-episode window from episode 200 within 1.0 of v*: worst |mean - v*| = {worst:.2f}", worst <= 1.0)
    check(
        f"baseline much faster over episodes 1-200: {mean(base[:200]):.2f} vs {mean(plain[:200]):.2f}",
        mean(base[:200]) > mean(plain[:200]) + 5,
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "short_corridor.txt").write_text("\n".join(lines) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""A resumable benchmark table: pgtorchrl pipelines trained per (algorithm, env, seed) against
published results, each under its reference's protocol. The tables are :data:`Suite` values:
``benchmarks/mujoco_table.py`` (VPG, NPG, TRPO and PPO on MuJoCo),
``benchmarks/minatar_table.py`` (PPO on MinAtar) and ``benchmarks/atari_table.py`` (PPO on Atari
against CleanRL's).

Runs every chosen (algorithm, env, seed) as an MLflow child run of one parent run per table
(the suite's experiment, tag ``SUITE.table``), ``--parallel`` at a time (2 on a
2-core machine), and is resumable: a rerun skips the finished children, continues the stopped
ones from their newest checkpoint (``pgtorchrl resume``), and starts the missing ones and those
stopped before their first checkpoint (a new run replaces such a one). A benchmark
of many hours spans several sessions this way; ``--table-only`` prints the table from what the
store holds without training.

The MLflow store is not committed, and a session may start on a fresh machine without it, so every
finished child run is also archived in a committed file, ``benchmarks/results/runs/SUITE/TABLE.json``
(:func:`archive`: its tags and the histories the table and the curves read), and a table whose
store lacks archived runs gets them back as finished child runs before anything else
(:func:`restore`): the table, the figures and the skipping of finished runs then work as if the
store had been kept. Only a run stopped midway is lost with its store (it is trained again).

Per (algorithm, env) it prints ours next to each reference, in the reference's metric and step
budget (:func:`score`: the maximum over training of the seeds' mean ``eval/return_mean``
(Tianshou's), the last ``eval/return_mean``, or the mean training-episode return
``rollout/episode_return`` over the last points), with the mean over seeds and its 95%
percentile-bootstrap interval (resampling seeds), the interquartile mean (benchmarks/rl_stats.py),
and whether the reference is matched (its mean inside our interval, or ours above it; ``pending``
below 3 finished seeds, ``short`` below its budget, ``no value`` where none was read). The
published tables give means and spreads, not per-seed results, so no probability of improvement
over them is computed. The parent run gets the table (``table.txt``) and one learning-curve figure
per env (``curves_ENV.png``: every algorithm's mean ``rollout/episode_return``, each seed's averaged
over 25k frames, with its 95% bootstrap band).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Literal, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_stats import bootstrap_ci, iqm

ROOT = Path(__file__).resolve().parents[1]
MIN_SEEDS = 3  # the fewest finished seeds a verdict is given on
# the finished runs of every table, committed (PGTORCHRL_RUNS_ARCHIVE: elsewhere, e.g. a test's own folder)
ARCHIVE = Path(os.environ.get("PGTORCHRL_RUNS_ARCHIVE", ROOT / "benchmarks" / "results" / "runs"))
#: what :func:`archive` keeps of a run: the histories that :func:`table` and :func:`curves_png` read
ARCHIVED_METRICS = ("rollout/episode_return", "eval/return_mean", "time/fps", "time/elapsed_s")


class Reference(NamedTuple):
    """A published result: its source, its metric (``statistic``: how :func:`score` and
    :func:`table` compute it from our runs), its step budget and its ``{env: (mean, spread or
    None)}`` (../shared/REFERENCE.md; values read off plots say so in ``source``); an env
    missing from ``values`` has no value read yet (its row says ``no value``)."""

    source: str
    metric: str
    statistic: Literal["smoothed_training_return", "max_mean_eval", "final_eval"]
    budget: int
    values: dict[str, tuple[float, float | None]]


class Suite(NamedTuple):
    """One benchmark table: its MLflow experiment, its name in tags (``NAME.algo``, ``NAME.env``,
    ``NAME.seed``, ``NAME.table``) and titles, its algorithms and envs (short name: env id), the
    pipeline of an (algorithm, env), the references per algorithm (the one its pipelines follow
    first, then others shown beside it), the training-return points averaged at the end per
    algorithm (``smoothed_training_return``), and the learning curves' window in frames."""

    name: str
    title: str
    experiment: str
    algos: tuple[str, ...]
    envs: dict[str, str]
    pipeline: Callable[[str, str], Path]
    references: dict[str, tuple[Reference, ...]]
    smoothing: dict[str, int]
    curve_window: int = 25_000

    def tag(self, what: str) -> str:
        return f"{self.name}.{what}"


def client():
    from pgtorchrl.record.tracking import mlflow_client

    return mlflow_client()  # $MLFLOW_TRACKING_URI or the default store, made while no run makes it


def parent_run(suite: Suite, c, table: str, create: bool = True):
    """The table's parent run (found by its ``SUITE.table`` tag), created if missing."""
    experiment = c.get_experiment_by_name(suite.experiment)
    if experiment is None:
        if not create:
            return None
        c.create_experiment(suite.experiment)
        experiment = c.get_experiment_by_name(suite.experiment)
    runs = c.search_runs([experiment.experiment_id], filter_string=f"tags.`{suite.tag('table')}` = '{table}'")
    if runs:
        return runs[0]
    if not create:
        return None
    name, tags = f"{suite.name} table {table}", {suite.tag("table"): table}
    return c.create_run(experiment.experiment_id, run_name=name, tags=tags)


def children(suite: Suite, c, parent) -> dict[tuple[str, str, int], object]:
    """The parent's child runs by (algorithm, env, seed); of several, the newest."""
    runs = c.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )
    algo, env, seed = suite.tag("algo"), suite.tag("env"), suite.tag("seed")
    return {(r.data.tags[algo], r.data.tags[env], int(r.data.tags[seed])): r for r in runs}


def archive_file(suite: Suite, table: str) -> Path:
    return ARCHIVE / suite.name / f"{table}.json"


def archive(suite: Suite, c, parent, table: str) -> Path:
    """Writes the table's finished child runs (their tags, and the histories of
    :data:`ARCHIVED_METRICS`) to :func:`archive_file`, keeping the runs it already holds that the
    store lacks; one run per (algorithm, env, seed), the store's where both have one."""
    path = archive_file(suite, table)
    kept = json.loads(path.read_text())["runs"] if path.exists() else []
    runs = {(r["tags"][suite.tag("algo")], r["tags"][suite.tag("env")], r["tags"][suite.tag("seed")]): r for r in kept}
    for (algo, env, seed), run in children(suite, c, parent).items():
        if run.info.status != "FINISHED":
            continue
        original = run.data.tags.get(suite.tag("restored_from"), run.info.run_id)
        tags = {
            k: v
            for k, v in run.data.tags.items()
            if (k.startswith(f"{suite.name}.") or k == "mlflow.runName") and k != suite.tag("restored_from")
        }
        metrics = {key: [list(point) for point in history(c, run.info.run_id, key)] for key in ARCHIVED_METRICS}
        metrics = {key: points for key, points in metrics.items() if points}
        runs[(algo, env, str(seed))] = {"run_id": original, "tags": tags, "metrics": metrics}
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = [runs[key] for key in sorted(runs, key=lambda k: (k[0], k[1], int(k[2])))]
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # another invocation may archive the same table
    partial.write_text(json.dumps({"suite": suite.name, "table": table, "runs": ordered}, indent=0) + "\n")
    partial.replace(path)
    return path


def restore(suite: Suite, c, table: str) -> int:
    """Adds the archived runs of ``table`` that its store lacks (no finished child of that
    algorithm, env and seed) as finished child runs of its parent (created if missing), tagged
    ``SUITE.restored_from`` with the original run id; returns how many it added."""
    from mlflow.entities import Metric

    path = archive_file(suite, table)
    if not path.exists():
        return 0
    parent = parent_run(suite, c, table)
    have = children(suite, c, parent)
    added = 0
    for run in json.loads(path.read_text())["runs"]:
        tags = run["tags"]
        key = (tags[suite.tag("algo")], tags[suite.tag("env")], int(tags[suite.tag("seed")]))
        if key in have and have[key].info.status == "FINISHED":
            continue
        tags = {**tags, "mlflow.parentRunId": parent.info.run_id, suite.tag("restored_from"): run["run_id"]}
        new = c.create_run(parent.info.experiment_id, tags=tags)
        points = [Metric(k, value, 0, int(step)) for k, history_ in run["metrics"].items() for step, value in history_]
        for i in range(0, len(points), 1000):  # MLflow's batch limit
            c.log_batch(new.info.run_id, metrics=points[i : i + 1000])
        c.set_terminated(new.info.run_id, status="FINISHED")
        added += 1
    if added:
        history.cache_clear()
        print(f"restored {added} finished runs of table {table!r} from {path}", flush=True)
    return added


def command(
    suite: Suite, job: tuple[str, str, int], existing, parent_id: str, overrides: list[str]
) -> list[str] | None:
    """How to get (algorithm, env, seed) done: nothing (finished), resume, or train."""
    algo, env, seed = job
    if existing is not None:
        if existing.info.status == "FINISHED":
            return None
        if has_checkpoint(existing.info.run_id):
            return [sys.executable, "-m", "pgtorchrl", "resume", existing.info.run_id]
        # stopped before its first checkpoint: nothing to resume from, so a new run replaces it
        # (``children`` takes the newest; the old one stays in the store as it ended)
    pipeline = suite.pipeline(algo, env)
    tags = (
        f"{{mlflow.parentRunId: {parent_id}, {suite.tag('algo')}: {algo}, {suite.tag('env')}: {env}, "
        f"{suite.tag('seed')}: '{seed}'}}"
    )
    return [
        sys.executable,
        "-m",
        "pgtorchrl",
        str(pipeline),
        f"seed={seed}",
        f"experiment={suite.experiment}",
        f"tracking.run_name={algo}-{env}-seed{seed}",
        f"tracking.tags={tags}",
        *overrides,
    ]


def has_checkpoint(run_id: str) -> bool:
    """Whether the run logged a checkpoint that ``pgtorchrl resume`` can continue from."""
    from pgtorchrl.trainers.checkpoint import CHECKPOINT_DIR

    return any(f.path.endswith(".pt") for f in client().list_artifacts(run_id, CHECKPOINT_DIR))


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a scheduler, a session's end) stops the table as Ctrl-C does


def _stop(running: list, grace_s: float = 10.0) -> None:
    """Ends the running children KILLED with their checkpoints (a rerun resumes them). Ctrl-C in a
    terminal has already reached them (one process group); a SIGTERM to this process, or a
    background start that ignores SIGINT, has not: those still running after ``grace_s`` get
    SIGTERM, which pgtorchrl treats as Ctrl-C."""
    deadline = time.time() + grace_s
    for _, proc, _ in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
    for _, proc, _ in running:
        proc.wait(timeout=120)


def run_jobs(
    suite: Suite, jobs: list[tuple[str, str, int]], parallel: int, table: str, overrides: list[str], logs: Path
) -> None:
    """Runs what is left of ``jobs``, ``parallel`` processes at a time; each one's output goes
    to ``logs/ALGO_ENV_SEED.log``. A failed one is reported and the rest go on. Ctrl-C or SIGTERM
    ends the running children and the parent run KILLED."""
    signal.signal(signal.SIGTERM, _interrupt)
    c = client()
    restore(suite, c, table)
    parent = parent_run(suite, c, table)
    c.update_run(parent.info.run_id, status="RUNNING")
    logs.mkdir(parents=True, exist_ok=True)
    existing = children(suite, c, parent)
    todo = [job for job in jobs if existing.get(job) is None or existing[job].info.status != "FINISHED"]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already finished; {len(todo)} to run", flush=True)
    running: list[tuple[tuple, subprocess.Popen, float]] = []
    status = "FINISHED"
    try:
        while todo or running:
            while todo and len(running) < parallel:
                job = todo.pop(0)
                # what the store holds now: another invocation of this script may have run the job meanwhile
                cmd = command(suite, job, children(suite, c, parent).get(job), parent.info.run_id, overrides)
                if cmd is None:
                    print(f"skip {job}: finished meanwhile", flush=True)
                    continue
                with open(logs / f"{job[0]}_{job[1]}_{job[2]}.log", "a") as log:  # the child keeps its own copy
                    running.append((job, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), time.time()))
                print(f"start {job} ({'resume' if 'resume' in cmd else 'train'})", flush=True)
            time.sleep(5)
            for item in list(running):
                job, proc, started = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                outcome = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {logs})"
                if proc.returncode == 0:
                    archive(suite, c, parent, table)  # committed with the table: it outlives this store
                print(f"{outcome} {job} in {time.time() - started:.0f} s", flush=True)
    except KeyboardInterrupt:
        status = "KILLED"
        _stop(running)
        raise
    finally:
        c.set_terminated(parent.info.run_id, status=status)


@functools.lru_cache(maxsize=None)  # the table, the scores and the figures read the same histories
def history(c, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in c.get_metric_history(run_id, key))


def score(suite: Suite, algo: str, statistic: str, run_id: str, c) -> float | None:
    """One seed's value of a reference's metric (``None`` if the run logged nothing yet): its
    best eval return (``max_mean_eval``, per seed), its last one (``final_eval``), or its mean
    training return over the suite's last ``smoothing[algo]`` points."""
    if statistic in ("max_mean_eval", "final_eval"):
        points = history(c, run_id, "eval/return_mean")
        if not points:
            return None
        return max(v for _, v in points) if statistic == "max_mean_eval" else points[-1][1]
    points = history(c, run_id, "rollout/episode_return")
    return float(np.mean([v for _, v in points[-suite.smoothing[algo] :]])) if points else None


def mean_curve_max(curves: np.ndarray) -> float:
    """Tianshou's statistic: the maximum over time of the seeds' mean curve (``curves``: seeds x steps)."""
    return float(np.max(np.mean(curves, axis=0)))


def table(suite: Suite, c, parent, algos, envs) -> str:
    runs = children(suite, c, parent)
    lines = [
        f"{'algo':<5} {'env':<12} {'seeds':>5} {'frames':>9} {'ours mean [95% CI]':>30} {'IQM':>8}   "
        f"{'reference':>18}  matched  per seed  (reference; metric)"
    ]
    for algo in algos:
        for env in envs:
            done = [(seed, r) for (a, e, seed), r in sorted(runs.items()) if a == algo and e == env]
            finished = [(s, r) for s, r in done if r.info.status == "FINISHED"]
            if not finished:
                states = (
                    ", ".join(
                        f"seed {s}: {r.info.status.lower()} at {int(r.data.metrics.get('time/elapsed_s', 0))} s"
                        for s, r in done
                    )
                    or "not started"
                )
                lines.append(f"{algo:<5} {env:<12} {0:>5} {'':>9} {'(' + states + ')':>30}")
                continue
            # the frames trained (logged every iteration; episodes may end before the last one)
            frames = min(history(c, r.info.run_id, "time/fps")[-1][0] for _, r in finished)
            head = f"{algo:<5} {env:<12} {len(finished):>5} {frames:>9} "
            for ref in suite.references[algo]:
                lines.append(head + _row(suite, c, algo, env, ref, finished, frames))
    return "\n".join(lines)


def _shown(value: float) -> str:
    """A return as the tables print it: whole numbers from 100 on (MuJoCo's), one decimal below (MinAtar's)."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _row(suite: Suite, c, algo: str, env: str, ref: Reference, finished: list, frames: int) -> str:
    """Ours in ``ref``'s metric over the finished seeds, beside ``ref``, and the verdict."""
    ref_mean, ref_spread = ref.values.get(env, (float("nan"), None))
    per_seed = [score(suite, algo, ref.statistic, r.info.run_id, c) for _, r in finished]
    if ref.statistic == "max_mean_eval":  # Tianshou's: the maximum of the seeds' mean curve, resampling whole curves
        curves = [history(c, r.info.run_id, "eval/return_mean") for _, r in finished]
        steps = min(len(cv) for cv in curves)
        data = np.array([[v for _, v in cv[:steps]] for cv in curves])
        mean = mean_curve_max(data)
        low, high = bootstrap_ci(data, statistic=mean_curve_max) if len(data) > 1 else (mean, mean)
    else:
        mean = float(np.mean(per_seed))
        low, high = bootstrap_ci(per_seed) if len(per_seed) > 1 else (mean, mean)
    matched = "yes" if low <= ref_mean <= high or low > ref_mean else "no"
    if env not in ref.values:
        matched = "no value"  # none read for this env yet: ours stands alone
    elif frames < ref.budget:
        matched = "short"  # not yet at the reference's step budget: no verdict
    elif len(finished) < MIN_SEEDS:
        matched = "pending"  # too few seeds for an interval
    ours = f"{_shown(mean)} [{_shown(low)}, {_shown(high)}]"
    reference = "-" if env not in ref.values else _shown(ref_mean) + (f" +- {_shown(ref_spread)}" if ref_spread else "")
    seeds = ", ".join(_shown(v) for v in per_seed)
    return (
        f"{ours:>30} {_shown(iqm(per_seed)):>8}   {reference:>18}  {matched:<7}  {seeds}  "
        f"({ref.source}; {ref.metric}; budget {ref.budget:.0e})"
    )


def smoothed(points: list[tuple[int, float]], window: int) -> list[tuple[int, float]]:
    """Each point's value replaced by the mean of the values logged in the ``window`` frames up to it."""
    steps = np.array([step for step, _ in points])
    sums = np.concatenate([[0.0], np.cumsum([value for _, value in points])])
    first = np.searchsorted(steps, steps - window, side="right")  # the window (step - window, step]
    last = np.arange(1, len(points) + 1)
    return [(int(step), float(v)) for step, v in zip(steps, (sums[last] - sums[first]) / (last - first))]


def seed_columns(curves: list[list[tuple[int, float]]]) -> tuple[np.ndarray, list[list[float]]]:
    """The seeds' curves on one axis of frames: the steps of the curve that reaches furthest (of
    those, the one with the most points), and at each, every seed's value linearly interpolated
    between its own logged steps, for the seeds whose curve spans that step (seeds log at
    different frames: a return is logged only in a batch where an episode ended, so the n-th
    point of two seeds is not the same frame)."""
    x = np.array([step for step, _ in max(curves, key=lambda cv: (cv[-1][0], len(cv)))])
    columns: list[list[float]] = [[] for _ in x]
    for cv in curves:
        steps, values = np.array([s for s, _ in cv]), np.array([v for _, v in cv])
        spanned = (x >= steps[0]) & (x <= steps[-1])
        for i, value in zip(np.flatnonzero(spanned), np.interp(x[spanned], steps, values)):
            columns[i].append(float(value))
    keep = [i for i, column in enumerate(columns) if column]
    return x[keep], [columns[i] for i in keep]


def curves_png(suite: Suite, c, parent, env: str, algos) -> bytes | None:
    """Each algorithm's mean ``rollout/episode_return`` on ``env`` over its seeds (each seed's
    averaged over ``suite.curve_window`` frames: a point per batch is too noisy to read)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = children(suite, c, parent)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for algo in algos:
        seeds = [
            (history(c, r.info.run_id, "rollout/episode_return"), r.info.status == "FINISHED")
            for (a, e, _), r in runs.items()
            if a == algo and e == env
        ]
        seeds = [(smoothed(cv, suite.curve_window), finished) for cv, finished in seeds if cv]
        if not seeds:
            continue
        x, columns = seed_columns([cv for cv, _ in seeds])
        short = sum(not finished for _, finished in seeds)  # stopped or still running: in the mean while they last
        label = f"{algo} ({len(seeds) - short} seeds" + (f"; {short} more while it ran)" if short else ")")
        ax.plot(x, [np.mean(c) for c in columns], label=label)
        if len(seeds) > 1:
            band = np.array([bootstrap_ci(c, resamples=2000) for c in columns])
            ax.fill_between(x, band[:, 0], band[:, 1], alpha=0.2)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set(
        xlabel="env frames",
        ylabel=f"rollout/episode_return ({suite.curve_window // 1000}k-frame mean)",
        title=f"{suite.envs[env]}: mean over seeds, 95% bootstrap band",
    )
    ax.legend()
    return png_bytes(fig)


def png_bytes(fig) -> bytes:
    """A finished matplotlib figure as PNG bytes (the tables' figures: 100 dpi), closed after."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def report(suite: Suite, table_name: str, algos, envs, out: Path | None) -> None:
    c = client()
    restore(suite, c, table_name)
    parent = parent_run(suite, c, table_name, create=False)
    if parent is None:
        raise SystemExit(f"no table {table_name!r} in experiment {suite.experiment!r} yet: run without --table-only")
    text = f"{suite.title} table {table_name!r}, MLflow parent run {parent.info.run_id}\n"
    text += table(suite, c, parent, algos, envs)
    print(text)
    archive(suite, c, parent, table_name)
    c.log_text(parent.info.run_id, text + "\n", "table.txt")
    with tempfile.TemporaryDirectory() as tmp:
        for env in envs:
            png = curves_png(suite, c, parent, env, algos)
            if png is not None:
                path = Path(tmp) / f"curves_{env}.png"
                path.write_bytes(png)
                c.log_artifact(parent.info.run_id, str(path))
                if out is not None:  # beside the table: the documentation's benchmark pages show both
                    (out.parent / f"{out.stem}_curves_{env}.png").write_bytes(png)
    if out is not None:
        out.write_text(text + "\n")


def main(suite: Suite, doc: str, default_table: str) -> None:
    """The command line of a suite's script (``doc``: its usage text)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", choices=suite.algos, default=list(suite.algos))
    parser.add_argument("--envs", nargs="+", choices=list(suite.envs), default=list(suite.envs))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2, help="runs side by side (default 2: one per core here)")
    parser.add_argument(
        "--table", default=default_table, help=f"the table's name: its parent run (default {default_table})"
    )
    parser.add_argument(
        "--override",
        nargs="*",
        default=[],
        metavar="key.path=value",
        help="overrides for every new run (a smoke test: train.total_frames=8000)",
    )
    parser.add_argument("--table-only", action="store_true", help="print the table from the store; train nothing")
    parser.add_argument("--logs", type=Path, default=Path("mlruns") / f"{suite.name}-logs")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the table to this file, and each env's curves beside it (STEM_curves_ENV.png)",
    )
    args = parser.parse_args()
    if not args.table_only:
        # row by row (each algorithm and env over its seeds): the table's rows complete one after another
        jobs = [(algo, env, seed) for algo in args.algos for env in args.envs for seed in args.seeds]
        run_jobs(suite, jobs, args.parallel, args.table, args.override, args.logs)
    report(suite, args.table, args.algos, args.envs, args.out)

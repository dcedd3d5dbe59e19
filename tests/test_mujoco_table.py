"""benchmarks/mujoco_table.py on a tiny budget: child runs under one parent, the table, and a
rerun that finds the finished runs and trains nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pgtorchrl.record.tracking import mlflow_client

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_mujoco_table_tracks_its_runs_and_a_rerun_skips_the_finished_ones(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # the table archives its finished runs in tmp_path, not in the checkout
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PGTORCHRL_RUNS_ARCHIVE": str(tmp_path / "archive")}
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "mujoco_table.py"),
        "--algos",
        "vpg",
        "--envs",
        "hopper",
        "--seeds",
        "0",
        "1",
        "--table",
        "smoke",
        "--override",
        "train.total_frames=8000",
        "eval.every_frames=4000",
        "eval.episodes=2",
    ]
    first = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "0 of 2 runs already finished; 2 to run" in first.stdout
    row = next(line for line in first.stdout.splitlines() if line.startswith("vpg   hopper"))
    assert row.split()[2:4] == ["2", "8000"] and "short" in row  # 2 seeds, below the 3M budget: no verdict
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mujoco-benchmark").experiment_id])
    parent = next(r for r in runs if "mujoco.table" in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["mujoco.seed"] for r in children) == ["0", "1"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {"table.txt", "curves_hopper.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 runs already finished; 0 to run" in again.stdout
    assert len(client.search_runs([parent.info.experiment_id])) == len(runs)


@pytest.mark.slow
def test_sigterm_ends_the_table_and_its_runs_killed_even_when_sigint_is_ignored(tmp_path):
    """A background job (``cmd &`` in a script, nohup) ignores SIGINT, and so do its children: the
    table stops on SIGTERM and hands it on, so no run is left RUNNING and a rerun resumes them."""
    import signal
    import time

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # the table archives its finished runs in tmp_path, not in the checkout
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PGTORCHRL_RUNS_ARCHIVE": str(tmp_path / "archive")}
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "mujoco_table.py"),
        "--algos",
        "vpg",
        "--envs",
        "hopper",
        "--seeds",
        "0",
        "--table",
        "stop",
        "--override",
        "train.total_frames=3000000",
        "eval.episodes=0",
        "tracking.checkpoint_every_frames=8000",
    ]
    table = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    client = mlflow_client(uri)  # it may create the store: at once, but not while the table's driver does
    deadline = time.time() + 300
    while time.time() < deadline:  # until the child has trained a few batches
        experiment = client.get_experiment_by_name("mujoco-benchmark")
        runs = client.search_runs([experiment.experiment_id], "tags.`mujoco.seed` = '0'") if experiment else []
        if runs and runs[0].data.metrics.get("rollout/episode_return") is not None:
            break
        time.sleep(2)
    else:
        table.kill()
        pytest.fail("the child run never logged a batch")
    table.send_signal(signal.SIGTERM)
    out, _ = table.communicate(timeout=200)
    assert table.returncode != 0, out
    statuses = {
        r.info.run_name or r.data.tags.get("mujoco.table"): r.info.status
        for r in client.search_runs([experiment.experiment_id])
    }
    assert set(statuses.values()) == {"KILLED"}, statuses  # the child and the parent


def test_a_stopped_run_resumes_from_its_checkpoint_and_one_stopped_before_any_is_trained_anew(tmp_path, monkeypatch):
    """A run killed before its first checkpoint has nothing to resume from (``pgtorchrl resume``
    fails on it): the table trains a new run for that seed instead of failing it every rerun."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import mujoco_table
    finally:
        sys.path.pop(0)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run(client.create_experiment("x", artifact_location=str(tmp_path / "artifacts")))
    client.set_terminated(run.info.run_id, status="KILLED")
    run = client.get_run(run.info.run_id)
    job = ("ppo", "hopper", 0)
    fresh = mujoco_table.command(job, run, "parent", [])
    assert "resume" not in fresh and fresh[3].endswith("ppo_hopper.yaml") and "seed=0" in fresh
    (tmp_path / "frames_000000002048.pt").write_bytes(b"checkpoint")
    client.log_artifact(run.info.run_id, str(tmp_path / "frames_000000002048.pt"), "checkpoints")
    assert mujoco_table.command(job, run, "parent", [])[2:] == ["pgtorchrl", "resume", run.info.run_id]
    client.set_terminated(run.info.run_id, status="FINISHED")
    assert mujoco_table.command(job, client.get_run(run.info.run_id), "parent", []) is None


def test_the_table_computes_each_references_metric_from_the_seeds_histories(tmp_path, monkeypatch):
    """TRPO's rows from three hand-made runs: Tianshou's row is the maximum of the seeds' mean eval
    curve, SB3-contrib's the mean of the seeds' last evals, each against its own published value."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import mujoco_table
    finally:
        sys.path.pop(0)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    client = mujoco_table.client()
    parent = mujoco_table.parent_run(client, "hand")
    curves = {0: [1000.0, 4000.0, 3000.0], 1: [2000.0, 3000.0, 5000.0], 2: [1500.0, 2000.0, 4000.0]}
    for seed, curve in curves.items():
        tags = {
            "mlflow.parentRunId": parent.info.run_id,
            "mujoco.algo": "trpo",
            "mujoco.env": "hopper",
            "mujoco.seed": str(seed),
        }
        run = client.create_run(parent.info.experiment_id, tags=tags)
        for i, value in enumerate(curve):
            client.log_metric(run.info.run_id, "eval/return_mean", value, step=(i + 1) * 500_000)
        client.log_metric(run.info.run_id, "time/fps", 1.0, step=1_000_448)
        client.set_terminated(run.info.run_id, "FINISHED")
    rows = [line.split() for line in mujoco_table.table(client, parent, ["trpo"], ["hopper"]).splitlines()[1:]]
    tianshou, sb3 = rows
    # the mean curve is (1500, 3000, 4000): its maximum 4000 (no seed's own maximum, 4000/5000/4000, is the figure)
    assert tianshou[4] == "4000" and tianshou[8:10] == ["2046", "+-"] and tianshou[11] == "yes"
    assert " ".join(tianshou[12:15]) == "4000, 5000, 4000"
    # the last evals 3000, 5000, 4000: mean 4000 against SB3-contrib's 3372
    assert (
        sb3[4] == "4000" and sb3[8:11] == ["3372", "+-", "215"] and sb3[11] == "yes" and "SB3-contrib" in " ".join(sb3)
    )
    assert " ".join(sb3[12:15]) == "3000, 5000, 4000"


def test_a_learning_curve_is_smoothed_over_the_frames_before_each_point():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from benchmark_table import smoothed
    finally:
        sys.path.pop(0)
    import random

    rng = random.Random(0)
    steps = sorted(rng.sample(range(1, 200_000), 300))
    points = [(step, rng.uniform(-100, 3000)) for step in steps]
    naive = [
        (
            step,
            sum(v for s, v in points if step - 25_000 < s <= step)
            / sum(1 for s, _ in points if step - 25_000 < s <= step),
        )
        for step, _ in points
    ]
    assert [s for s, _ in smoothed(points, 25_000)] == steps
    assert all(abs(a - b) < 1e-6 for (_, a), (_, b) in zip(smoothed(points, 25_000), naive))


def test_seeds_curves_are_averaged_at_the_same_frame_not_the_same_index():
    """Seeds log a return only in batches where an episode ended, so their points fall on
    different frames: the mean at a frame is the mean of each seed's value there (interpolated
    between its own points), and a seed counts only over the frames its curve spans."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from benchmark_table import seed_columns
    finally:
        sys.path.pop(0)
    every_batch = [(1000, 0.0), (2000, 10.0), (3000, 20.0), (4000, 30.0)]
    fewer_points = [(1000, 100.0), (3000, 300.0), (4000, 400.0)]  # no episode ended in batch 2
    stopped = [(2000, 50.0), (3000, 60.0)]  # started logging late, stopped early
    x, columns = seed_columns([fewer_points, every_batch, stopped])
    assert list(x) == [1000, 2000, 3000, 4000]
    assert columns == [[100.0, 0.0], [200.0, 10.0, 50.0], [300.0, 20.0, 60.0], [400.0, 30.0]]


@pytest.mark.parametrize(
    "script, suite", [("mujoco_table", "MUJOCO"), ("minatar_table", "MINATAR"), ("atari_table", "ATARI")]
)
def test_every_job_of_a_suite_trains_a_pipeline_that_validates_with_the_suites_tags(script, suite):
    """Each (algorithm, env) of a table names a shipped pipeline that validates, and its command
    tags the child run with the suite's names (what ``children`` reads back)."""
    import importlib

    from pgtorchrl.pipeline.parse import load_spec

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        module = importlib.import_module(script)
    finally:
        sys.path.pop(0)
    table = getattr(module, suite)
    import benchmark_table

    for algo in table.algos:
        for env in table.envs:
            cmd = benchmark_table.command(table, (algo, env, 2), None, "PARENT", [])
            spec = load_spec(Path(cmd[3]), cmd[4:])
            assert spec.seed == 2 and spec.experiment == table.experiment
            tags = spec.tracking.tags
            assert tags[f"{table.name}.algo"] == algo and tags[f"{table.name}.env"] == env
            assert tags[f"{table.name}.seed"] == "2" and tags["mlflow.parentRunId"] == "PARENT"
            assert spec.env.env_id == table.envs[env]


def test_finished_runs_are_archived_and_a_fresh_store_gets_them_back(tmp_path, monkeypatch):
    """The store is not committed and a session may start without it: the table's finished runs
    are archived in a committed file, and restoring that file into an empty store gives the same
    table (and no duplicate runs when restored again); an archive keeps runs its store has lost."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import benchmark_table
        import mujoco_table
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(benchmark_table, "ARCHIVE", tmp_path / "archive")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/first.db")
    client = mujoco_table.client()
    parent = mujoco_table.parent_run(client, "kept")
    for seed in range(3):
        tags = {"mlflow.parentRunId": parent.info.run_id, "mujoco.algo": "ppo", "mujoco.env": "hopper"}
        run = client.create_run(parent.info.experiment_id, tags={**tags, "mujoco.seed": str(seed)})
        for i in range(12):
            client.log_metric(run.info.run_id, "rollout/episode_return", 100.0 * i + seed, step=(i + 1) * 90_000)
            client.log_metric(run.info.run_id, "time/fps", 2000.0, step=(i + 1) * 90_000)
        client.set_terminated(run.info.run_id, "FINISHED" if seed < 2 else "KILLED")  # seed 2 stopped midway
    table = mujoco_table.table(client, parent, ["ppo"], ["hopper"])
    path = benchmark_table.archive(mujoco_table.MUJOCO, client, parent, "kept")
    archived = json.loads(path.read_text())["runs"]
    assert [r["tags"]["mujoco.seed"] for r in archived] == ["0", "1"]  # the finished ones only

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/fresh.db")  # a new machine
    benchmark_table.history.cache_clear()
    fresh = mujoco_table.client()
    assert benchmark_table.restore(mujoco_table.MUJOCO, fresh, "kept") == 2
    assert benchmark_table.restore(mujoco_table.MUJOCO, fresh, "kept") == 0
    restored_parent = mujoco_table.parent_run(fresh, "kept")
    assert mujoco_table.table(fresh, restored_parent, ["ppo"], ["hopper"]) == table  # its finished seeds' figures
    runs = fresh.search_runs([restored_parent.info.experiment_id], "tags.`mujoco.restored_from` != ''")
    assert sorted(r.data.tags["mujoco.restored_from"] for r in runs) == sorted(r["run_id"] for r in archived)
    # archiving from the fresh store keeps the original run ids
    again = json.loads(benchmark_table.archive(mujoco_table.MUJOCO, fresh, restored_parent, "kept").read_text())
    assert again["runs"] == archived


def test_the_minatar_tables_sb3_peer_is_read_from_the_peers_result_files(tmp_path):
    """The peer row's values are the result files' final returns (mean and spread over the seeds
    run, per game), not numbers typed into the table; a file without its final line fails in one
    line naming it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from minatar_table import sb3_peer
    finally:
        sys.path.pop(0)
    for game, seed, final in (("space_invaders", 0, 250.0), ("space_invaders", 1, 150.0), ("breakout", 0, 12.5)):
        line = f"stable-baselines3 PPO on X, seed {seed}: final eval/return_mean {final:.2f} at 5000192 frames"
        (tmp_path / f"minatar_sb3_{game}_{seed}.txt").write_text(f"# command\n{line}\nframes eval\n")
    peer = sb3_peer(tmp_path)
    assert peer.values["breakout"] == (12.5, None)
    mean, spread = peer.values["space_invaders"]
    assert mean == 200.0 and spread == pytest.approx(70.7107, abs=1e-3)
    (tmp_path / "minatar_sb3_breakout_1.txt").write_text("# command\nstopped\n")
    with pytest.raises(SystemExit, match="minatar_sb3_breakout_1.txt"):
        sb3_peer(tmp_path)

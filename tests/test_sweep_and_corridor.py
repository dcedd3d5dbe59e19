"""Sweeps in YAML, and the short-corridor pipelines (Sutton & Barto Figures 13.1 and 13.2)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from pgtorchrl.config.spec_file import SpecError
from pgtorchrl.envs.custom.short_corridor import OPTIMAL_VALUE, ShortCorridorEnv
from pgtorchrl.modules.linear_softmax import make_corridor_actor
from pgtorchrl.pipeline.parse import expand_sweep, load_spec

ROOT = Path(__file__).resolve().parents[1]
REINFORCE = ROOT / "pipelines" / "short_corridor_reinforce.yaml"
BASELINE = ROOT / "pipelines" / "short_corridor_baseline.yaml"


def test_grid_and_zip_sweeps_expand_to_validated_specs():
    children = expand_sweep(load_spec(REINFORCE))
    assert [label for label, _ in children] == ["alpha = 2^-12", "alpha = 2^-13", "alpha = 2^-14"]
    assert [spec.optim.lr for _, spec in children] == [2**-12, 2**-13, 2**-14]
    assert all(spec.sweep is None for _, spec in children)
    zipped = expand_sweep(load_spec(BASELINE))
    assert [(s.advantage.baseline, s.optim.lr) for _, s in zipped] == [("critic", 2**-9), ("none", 2**-13)]
    grid = expand_sweep(
        load_spec(REINFORCE, ["sweep.values={optim.lr: [0.1, 0.2], seed: [1, 2, 3]}", "sweep.labels=null"])
    )
    assert len(grid) == 6 and grid[0][0] == "optim.lr=0.1, seed=1"
    short = expand_sweep(
        load_spec(REINFORCE, ["sweep={optim.lr: [1.0e-3, 3.0e-3]}"])
    )  # the shorthand, on the command line
    assert [(label, s.optim.lr) for label, s in short] == [("optim.lr=0.001", 1e-3), ("optim.lr=0.003", 3e-3)]


def test_sweep_errors_name_the_key():
    with pytest.raises(SpecError, match=r"sweep.values: optim.lr: Input should be greater than 0"):
        expand_sweep(load_spec(REINFORCE, ["sweep.values={optim.lr: [-1.0]}", "sweep.labels=null"]), "x.yaml")
    with pytest.raises(SpecError, match=r"sweep.labels: 2 labels for 3 combinations"):
        load_spec(REINFORCE, ["sweep.labels=[a, b]"])
    with pytest.raises(SpecError, match=r"sweep.values: mode 'zip' needs lists of one length"):
        load_spec(BASELINE, ["sweep.values={optim.lr: [0.1], seed: [1, 2]}"])


def test_env_steps_like_the_book():
    env = ShortCorridorEnv(num_envs=4)
    right = torch.tensor([[1, 0]] * 4)
    left = torch.tensor([[0, 1]] * 4)
    path = []
    td = env.reset()
    for action in (left, right, left, right):
        td = env.step(td.set("action", action))
        path.append(int(td["next", "state"][0]))
        td = td["next"]
    # left in 0 stays; right 0 -> 1; left in 1 is reversed: 1 -> 2; right in 2 -> terminal 3
    assert path == [0, 1, 2, 3]
    assert bool(td["terminated"][0]) and float(td["episode_reward"][0]) == -4.0


def test_an_evaluation_episode_that_never_ends_is_cut_at_eval_max_steps(store):
    """The corridor's deterministic policy (always right, its initial mode) never reaches the goal:
    each evaluation episode stops at ``eval.max_steps`` with the return of the steps taken (-1 each)."""
    from pgtorchrl.trainers.trainer import train

    overrides = ["sweep=null", "train.iterations=1", "eval.episodes=2", "eval.max_steps=37"]
    result = train(load_spec(BASELINE, overrides))
    assert result.eval_return == -37.0
    assert MlflowClient(store).get_run(result.run_id).data.metrics["eval/return_std"] == 0.0


def test_independent_runs_keep_their_own_parameters():
    actor = make_corridor_actor((-1.47, 1.47), prob_floor=0.05, num_runs=3)
    theta = actor.module[0].module.theta
    assert theta.shape == (3, 2)
    with torch.no_grad():
        theta[1] = torch.tensor([2.0, -2.0])
    td = actor(ShortCorridorEnv(3).reset())
    p_right = td["logits"].softmax(-1)[:, 0]
    assert p_right[0].item() == pytest.approx(0.05, abs=1e-3) and p_right[1].item() == pytest.approx(0.95, abs=1e-6)


def test_short_corridor_sweep_runs_as_parent_and_child_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-m", "pgtorchrl", str(BASELINE), "train.iterations=30", "env.num_envs=20"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("short-corridor-baseline").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.info.run_name for r in children} == {
        "REINFORCE with baseline, alpha_theta = 2^-9, alpha_w = 2^-6",
        "REINFORCE, alpha = 2^-13",
    }
    parent_files = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"learning_curves.png", "curves.csv"} <= parent_files
    for child in children:
        history = client.get_metric_history(child.info.run_id, "rollout/episode_return")
        assert len(history) == 30
        assert len(client.get_metric_history(child.info.run_id, "rollout/action_0_prob")) == 30
    baseline = next(r for r in children if "baseline" in r.info.run_name)
    # the baseline variant learns within 30 episodes: P(right) moves up from 0.05
    assert client.get_metric_history(baseline.info.run_id, "rollout/action_0_prob")[-1].value > 0.2


@pytest.mark.slow
def test_figures_match_the_book(tmp_path):
    """The full Figures 13.1 and 13.2 (100 runs x 1000 episodes each), checked as the closing
    note reports them (benchmarks/short_corridor_check.py)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    for spec in (REINFORCE, BASELINE):
        subprocess.run([sys.executable, "-m", "pgtorchrl", str(spec)], check=True, cwd=tmp_path, env=env)
    check = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "short_corridor_check.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{OPTIMAL_VALUE:.2f}" in check.stdout


def test_seeds_flag_runs_children_and_a_confidence_band(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgtorchrl",
            str(ROOT / "pipelines" / "vpg_cartpole.yaml"),
            "--seeds",
            "0-2",
            "train.total_frames=1024",
            "eval.every_frames=512",
            "eval.episodes=2",
            "eval.target_return=null",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("vpg-cartpole").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1", "2"]
    band = client.get_metric_history(parent.info.run_id, "eval/return_mean")
    assert [m.step for m in band] == [512, 1024]
    child_values = [client.get_metric_history(r.info.run_id, "eval/return_mean")[-1].value for r in children]
    assert band[-1].value == pytest.approx(sum(child_values) / 3, rel=1e-5)
    low = client.get_metric_history(parent.info.run_id, "eval/return_ci95_low")[-1].value
    assert low <= band[-1].value
    assert "eval_across_seeds.png" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    bad = subprocess.run(
        [sys.executable, "-m", "pgtorchrl", str(ROOT / "pipelines" / "vpg_cartpole.yaml"), "--seeds", "4-1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        bad.returncode == 2
        and bad.stderr.strip()
        == "pgtorchrl: error: --seeds '4-1': write a range like 0-4 or a list like 0,3,7 (at most 1000 seeds)"
    )


def _children_metrics(client, experiment, metric="rollout/episode_return"):
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = {r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags}
    return runs, {
        (r.data.tags["mlflow.parentRunId"], r.info.run_name): [
            (m.step, m.value) for m in client.get_metric_history(r.info.run_id, metric)
        ]
        for r in runs
        if r.info.run_id not in parents
    }


@pytest.mark.slow  # over 15 s on this 2-core machine: CI's slow run
def test_sweep_workers_train_children_side_by_side_with_the_same_results(tmp_path) -> None:
    """``sweep.workers: 2`` trains the combinations in two processes; every child's metrics equal
    those of the same sweep trained one after another."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    for workers in (1, 2):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pgtorchrl",
                str(BASELINE),
                "train.iterations=20",
                "env.num_envs=10",
                f"sweep.workers={workers}",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
    runs, metrics = _children_metrics(MlflowClient(uri), "short-corridor-baseline")
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 6
    by_parent: dict = {}
    for (parent, name), history in metrics.items():
        assert len(history) == 20
        by_parent.setdefault(parent, {})[name] = history
    sequential, parallel = by_parent.values()
    assert sequential == parallel


@pytest.mark.slow  # over 15 s on this 2-core machine: CI's slow run
def test_ctrl_c_during_a_parallel_sweep_marks_every_run_killed(tmp_path):
    import signal
    import time

    from pgtorchrl.record.tracking import mlflow_client

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgtorchrl", str(REINFORCE), "train.iterations=1000", "sweep.workers=2"],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = mlflow_client(uri)  # it may create the store: at once, but not while the writer does
    deadline = time.time() + 120
    while time.time() < deadline:  # until both workers' runs have logged
        time.sleep(1)
        try:
            _, metrics = _children_metrics(client, "short-corridor-reinforce")
        except Exception:  # noqa: BLE001 (the store or the experiment is not there yet)
            continue
        if sum(bool(history) for history in metrics.values()) == 2:
            break
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    runs, metrics = _children_metrics(client, "short-corridor-reinforce")
    assert len(runs) == 3  # the parent and the two running children: the third never started
    assert {r.info.status for r in runs} == {"KILLED"}

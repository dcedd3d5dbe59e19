"""Hyperparameter studies (``tune:``) and sweeps on Ray: validation, MLflow runs, pruning,
``best.yaml``, the sampler's seed, resuming after Ctrl-C, and the same results on Ray."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pgtorchrl.cli import main
from pgtorchrl.config.spec_file import SpecError
from pgtorchrl.experiments.tune import check_space
from pgtorchrl.pipeline.parse import load_spec
from pgtorchrl.record.store_lock import store_lock

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "experiment": "tune-tiny",
    "seed": 0,
    "env": {"name": "gym_native", "env_id": "CartPole-v1", "num_envs": 4},
    "actor": {"name": "mlp", "hidden_sizes": [16]},
    "critic": {"name": "mlp", "hidden_sizes": [16]},
    "collector": {"name": "native", "frames_per_batch": 256},
    "advantage": {"name": "gae", "normalize": True},
    "loss": {"name": "reinforce"},
    "optim": {"name": "adam", "lr": 3.0e-3},
    "critic_optim": {"name": "adam", "lr": 3.0e-3},
    "train": {"total_frames": 1024},
    "eval": {"every_frames": 512, "episodes": 4},
    "tracking": {"checkpoint_every_frames": None, "log_models": False},
    # sampler seed 2 draws lr 3e-2, 3e-2, 3e-2, 1e-5 in its 4 random trials: the last is far
    # behind the others at its first evaluation, and the median pruner stops it there
    "tune": {
        "space": {"optim.lr": {"categorical": [3.0e-2, 1.0e-5]}},
        "n_trials": 4,
        "sampler_seed": 2,
        "startup_trials": 4,
        "prune_after_trials": 1,
    },
}


def write_spec(tmp_path, **changes) -> Path:
    raw = {**TINY, **changes}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def trials(storage: str, name: str = "tune-tiny"):
    with store_lock(storage):  # never create a new storage while a pipeline does
        return optuna.load_study(study_name=name, storage=storage).get_trials()


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "tune.space={optim.lrr: {uniform: [0.1, 0.2]}}",
            "tune.space.optim.lrr: no such spec field; did you mean 'optim.lr'?",
        ),
        (
            "tune.space={advantage.lmbda: {uniform: [0.5, 1.5]}}",
            "tune.space.advantage.lmbda: 1.5 is not valid there (advantage.lmbda: Input should be "
            "less than or equal to 1, got 1.5)",
        ),
        (
            "tune.space={optim.lr: {loguniform: [0.1, 0.2]}}",
            "tune.space.optim.lr: unknown distribution 'loguniform'; did you mean 'log_uniform'?",
        ),
        (
            "tune.space={tracking.run_name: {categorical: [a, b]}}",
            "tune.space.tracking.run_name: the 'tracking' section cannot be searched",
        ),
        (
            "tune.metric=frames_to_target",
            "tune.metric: 'frames_to_target' needs eval.target_return and eval.episodes > 0",
        ),
        ("eval.every_frames=null", "tune.pruner: prunes at evaluations during training: set eval.every_frames"),
        ("sweep={seed: [0, 1]}", "tune: a spec has a sweep: or a tune: section, not both"),
        ("tune.n_trails=3", "tune.n_trails: unknown key; did you mean 'n_trials'?"),
    ],
)
def test_a_bad_tune_section_is_one_line_and_trains_nothing(tmp_path, store, capsys, override, message):
    path = write_spec(tmp_path)
    assert main([str(path), override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pgtorchrl: error: {path}: {message}"), err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "mlruns" / "optuna.db").exists()


def test_check_space_accepts_every_bound_that_validates(tmp_path):
    spec = load_spec(
        write_spec(tmp_path),
        [
            "tune.space={optim.lr: {log_uniform: [1.0e-4, 1.0e-2]}, "
            "actor.hidden_sizes: {categorical: [[16], [32, 32]]}, train.value_steps: {int: [1, 5]}}"
        ],
    )
    check_space(spec)
    bad = load_spec(write_spec(tmp_path), ["tune.space={train.value_steps: {int: [0, 5]}}"])
    with pytest.raises(SpecError, match=r"tune.space.train.value_steps: 0 is not valid there"):
        check_space(bad)


@pytest.mark.slow  # over 15 s on this 2-core machine: CI's slow run
def test_a_tiny_study_tracks_trials_prunes_and_writes_a_best_spec(tmp_path, store, capsys):
    """4 trials locally: one parent run, one child per trial with its state as a tag, the
    median pruner stops the trial that lags, best.yaml validates and holds the best value; a
    second study with the same sampler seed draws the same parameters."""
    path = write_spec(tmp_path)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    storage = "sqlite:///mlruns/optuna.db"
    study = trials(storage)
    assert [t.state.name for t in study] == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    assert [t.params["optim.lr"] for t in study] == [3.0e-2, 3.0e-2, 3.0e-2, 1.0e-5]
    assert "study tune-tiny: 3 complete, 1 pruned, 0 fail" in out

    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("tune-tiny").experiment_id])
    parent = next(r for r in runs if "pgtorchrl.study" in r.data.tags)
    assert parent.info.status == "FINISHED"
    trial_runs = {
        r.data.tags["tune.trial"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert sorted(trial_runs) == ["0", "1", "2", "3"]
    for t in study:
        run = trial_runs[str(t.number)]
        assert run.info.status == "FINISHED" and run.data.tags["tune.state"] == t.state.name
        seeds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
        assert len(seeds) == 1 and seeds[0].data.params["optim.lr"] == str(t.params["optim.lr"])
        assert (seeds[0].data.tags.get("stopped") == "pruned") == (t.state.name == "PRUNED")
        if t.state.name == "COMPLETE":
            assert run.data.metrics["tune/objective"] == pytest.approx(t.value)
    pruned = client.get_metric_history(
        seeds[0].info.run_id, "eval/return_mean"
    )  # trial 3: one evaluation, then stopped
    assert [m.step for m in pruned] == [512]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best.yaml", "optimization_history.png", "param_importances.png", "parallel_coordinate.png"} <= artifacts
    best = Path(client.download_artifacts(parent.info.run_id, "best.yaml", str(tmp_path)))
    best_spec = load_spec(best)
    assert best_spec.tune is None and best_spec.optim.lr == study[0].params["optim.lr"]
    best_value = max(t.value for t in study if t.state.name == "COMPLETE")
    assert client.get_metric_history(parent.info.run_id, "tune/best_value")[-1].value == pytest.approx(best_value)

    # the same sampler seed, a fresh study: the same parameters in the same order
    assert main([str(path), "tune.study_name=again", "tune.n_trials=2", "tune.pruner=none"]) == 0
    assert [t.params for t in trials(storage, "again")] == [t.params for t in study[:2]]


def _wait_for(predicate, timeout=180.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail("timed out")


@pytest.mark.slow
def test_ctrl_c_leaves_the_study_consistent_and_a_rerun_continues_it(tmp_path):
    """Ctrl-C during trial 2: exit 130, the trial FAIL in the study and KILLED in MLflow; the
    same command continues to 4 finished trials in the same parent run, with no parameters drawn
    twice and the first trials untouched."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    # sampler seed 25 draws total_frames 8192, 8192, 2097152 for trials 0-2 and 8192, 8192 for
    # the rerun's trials 3-4 (seed 25 + 3): trial 2 trains for minutes, so the interrupt lands
    # in its training however fast the machine (with one length for all, a fast CI machine
    # finished trial 2's training between two polls of this test)
    space = {"optim.lr": {"log_uniform": [1.0e-4, 3.0e-2]}, "train.total_frames": {"categorical": [8192, 2097152]}}
    path = write_spec(
        tmp_path,
        tune={**TINY["tune"], "space": space, "pruner": "none", "sampler_seed": 25},
        eval={"every_frames": 4096, "episodes": 4},
    )
    command = [sys.executable, "-m", "pgtorchrl", str(path)]
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"

    def stored():
        if not (tmp_path / "mlruns" / "optuna.db").exists():
            return []
        try:
            return [t.state.name for t in trials(storage)]
        except KeyError:  # no study yet
            return []

    client = MlflowClient(uri)

    def training(name: str) -> bool:
        experiment = client.get_experiment_by_name("tune-tiny") if (tmp_path / "mlflow.db").exists() else None
        return experiment is not None and any(
            r.info.run_name == name for r in client.search_runs([experiment.experiment_id])
        )

    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: len(stored()) == 3 and training("trial 2 seed 0"))
    assert trials(storage)[2].params["train.total_frames"] == 2097152  # the long one, as drawn above
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command to continue the study" in err.strip().splitlines()[-1]
    assert stored() == ["COMPLETE", "COMPLETE", "FAIL"]
    before = trials(storage)
    experiment = client.get_experiment_by_name("tune-tiny").experiment_id
    statuses = {r.info.run_name: r.info.status for r in client.search_runs([experiment])}
    assert statuses == {
        "study tune-tiny": "KILLED",
        "trial 0": "FINISHED",
        "trial 0 seed 0": "FINISHED",
        "trial 1": "FINISHED",
        "trial 1 seed 0": "FINISHED",
        "trial 2": "KILLED",
        "trial 2 seed 0": "KILLED",
    }

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    after = trials(storage)
    assert [t.state.name for t in after] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert [t.params for t in after[:3]] == [t.params for t in before]
    assert len({t.params["optim.lr"] for t in after}) == 5  # nothing drawn twice
    assert [t.params["train.total_frames"] for t in after] == [8192, 8192, 2097152, 8192, 8192]
    runs = client.search_runs([experiment])
    assert [r.info.status for r in runs if "pgtorchrl.study" in r.data.tags] == ["FINISHED"]  # the same parent
    assert not [r for r in runs if r.info.status == "RUNNING"]


def _child_metrics(client, experiment: str, parent_tag: str | None = None):
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return {
        (r.data.tags.get("sweep.label") or r.info.run_name): [
            (m.step, m.value) for m in client.get_metric_history(r.info.run_id, "rollout/episode_return")
        ]
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent_tag
    }


@pytest.mark.slow
def test_on_a_local_ray_a_sweep_gives_the_local_pools_metrics_and_a_study_runs(tmp_path):
    """On a local Ray with 2 CPUs: a plain sweep's children equal those of the local process
    pool, metric by metric; a tiny study runs its 4 trials in 2 Ray workers, every run ends FINISHED."""
    pytest.importorskip("ray")
    vpg = ROOT / "pipelines" / "vpg_cartpole.yaml"
    sweep = [
        "sweep={values: {seed: [0, 1]}, workers: 2}",
        "train.total_frames=2048",
        "eval.every_frames=1024",
        "eval.episodes=2",
        "tracking.log_models=false",
    ]
    metrics = {}
    for backend in ("local", "ray"):
        uri = f"sqlite:///{tmp_path}/{backend}.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        proc = subprocess.run(
            [sys.executable, "-m", "pgtorchrl", str(vpg), *sweep, f"sweep.backend={backend}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("vpg-cartpole").experiment_id])
        assert {r.info.status for r in runs} == {"FINISHED"}
        parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
        metrics[backend] = _child_metrics(client, "vpg-cartpole", parent.info.run_id)
    assert metrics["ray"] == metrics["local"] and len(metrics["local"]) == 2

    uri = f"sqlite:///{tmp_path}/study.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    path = write_spec(tmp_path, tune={**TINY["tune"], "backend": "ray", "workers": 2, "pruner": "none"})
    proc = subprocess.run(
        [sys.executable, "-m", "pgtorchrl", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    study = trials(f"sqlite:///{tmp_path}/mlruns/optuna.db")
    assert [t.state.name for t in study] == ["COMPLETE"] * 4
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tune-tiny").experiment_id])
    assert len(runs) == 1 + 4 + 4 and {r.info.status for r in runs} == {"FINISHED"}

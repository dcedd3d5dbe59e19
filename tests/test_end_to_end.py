"""Whole runs on a tiny frame budget, tracked in a temporary MLflow store."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from pgtorchrl.record.tracking import mlflow_client

ROOT = Path(__file__).resolve().parents[1]
VPG = ROOT / "pipelines" / "vpg_cartpole.yaml"
TINY = ["train.total_frames=1024", "eval.every_frames=512", "eval.episodes=2", "eval.target_return=null"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pgtorchrl", *args], capture_output=True, text=True)


def only_run(uri, experiment="vpg-cartpole"):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_cli_run_is_tracked_with_params_metrics_artifacts_and_loadable_weights(store):
    proc = run_cli(str(VPG), *TINY, "tracking.run_name=tiny")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("finished: eval/return_mean=")
    client, run = only_run(store)
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert run.data.params["optim.lr"] == "0.003" and run.data.params["env.env_id"] == "CartPole-v1"
    assert run.data.params["train.total_frames"] == "1024"
    for key in (
        "rollout/episode_return",
        "rollout/episode_length",
        "train/loss_actor",
        "train/loss_critic",
        "train/entropy",
        "train/grad_norm",
        "time/fps",
    ):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [256, 512, 768, 1024], key  # step = env frames
    evals = client.get_metric_history(run.info.run_id, "eval/return_mean")
    assert [m.step for m in evals] == [512, 1024]
    assert len(client.get_metric_history(run.info.run_id, "eval/return_std")) == 2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "spec")}
    artifacts |= {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert artifacts == {"spec/resolved.yaml", "spec/given.yaml", "model/actor.pt", "model/critic.pt"}
    assert run.data.tags["version.torchrl"] == "0.14.1" and "version.torch" in run.data.tags
    assert run.data.tags["solved"] == "False"

    from pgtorchrl import load_actor, load_critic, make_gym_env

    actor, critic = load_actor(run.info.run_id), load_critic(run.info.run_id)
    state = torch.load(client.download_artifacts(run.info.run_id, "model/actor.pt"), weights_only=True)
    for name, tensor in actor.state_dict().items():
        torch.testing.assert_close(tensor, state[name])
    td = actor(make_gym_env("CartPole-v1", num_envs=2).reset())
    assert td["action"].shape == (2, 2) and td["action_log_prob"].shape == (2,)
    assert critic(td)["state_value"].shape == (2, 1)

    evaluated = run_cli("eval", run.info.run_id, "--episodes", "3", "--video")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("eval/return_mean=") and "over 3 deterministic episodes" in evaluated.stdout
    assert "video/episode.gif:" in evaluated.stdout
    assert "XDG_RUNTIME_DIR" not in evaluated.stderr, evaluated.stderr  # issue 29, item 10: no display probe
    gif = client.download_artifacts(run.info.run_id, "video/episode.gif")
    assert Path(gif).read_bytes()[:6] == b"GIF89a"
    missing = run_cli("eval", "0123456789abcdef")
    assert missing.returncode == 2 and missing.stderr.startswith("pgtorchrl: error: run '0123456789abcdef'")


def test_same_spec_and_seed_give_the_same_metrics(store):
    for _ in range(2):
        assert run_cli(str(VPG), *TINY, "seed=3").returncode == 0
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("vpg-cartpole").experiment_id])
    histories = [
        {
            key: [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, key)]
            for key in r.data.metrics
            if not key.startswith("time/")
        }
        for r in runs
    ]
    assert len(histories[0]) >= 8
    assert histories[0] == histories[1]
    other = run_cli(str(VPG), *TINY, "seed=4")
    assert other.returncode == 0
    last = client.search_runs([client.get_experiment_by_name("vpg-cartpole").experiment_id], max_results=1)[0]
    values = [(m.step, m.value) for m in client.get_metric_history(last.info.run_id, "train/loss_actor")]
    assert values != histories[0]["train/loss_actor"]  # (step, value) pairs: Metric objects differ by timestamp alone


def test_non_finite_loss_stops_with_a_clear_message_and_a_failed_run(store):
    from pgtorchrl.pipeline.build import build_pipeline
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import NonFiniteLossError, train

    spec = load_spec(VPG, TINY)
    pipeline = build_pipeline(spec)
    estimate = pipeline.advantage._estimate

    def poisoned(*args):  # the advantage turns NaN on the second batch
        advantage, target = estimate(*args)
        poisoned.calls += 1
        return (advantage * float("nan") if poisoned.calls == 2 else advantage), target

    poisoned.calls = 0
    pipeline.advantage._estimate = poisoned
    with pytest.raises(NonFiniteLossError, match=r"^train/loss_actor is nan at iteration 2 \(frame 512\)"):
        train(spec, pipeline=pipeline)
    client, run = only_run(store)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("NonFiniteLossError: train/loss_actor is nan")


def test_an_interrupt_inside_the_losses_parameter_swap_still_ends_the_run_killed(store, monkeypatch):
    """Ctrl-C while the loss runs with its functional parameters swapped in (``with
    params.to_module(net)``): tensordict's __exit__ would turn it into a RuntimeError and the run
    would end FAILED; it stays an interrupt and the run ends KILLED."""
    import pgtorchrl.objectives.reinforce as reinforce
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import train

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(reinforce, "log_prob_and_entropy", interrupted)  # called inside the swap
    with pytest.raises(KeyboardInterrupt):
        train(load_spec(VPG, TINY))
    _, run = only_run(store)
    assert run.info.status == "KILLED"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_marks_the_run_killed(store, signum):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgtorchrl", str(VPG), "train.total_frames=10000000", "eval.target_return=null"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = mlflow_client(store)  # it may create the store: at once, but not while the writer does
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until training is logging metrics
        time.sleep(0.5)
        experiment = client.get_experiment_by_name("vpg-cartpole")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and client.get_metric_history(runs[0].info.run_id, "train/loss_actor"):
            break
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    _, run = only_run(store)
    assert (
        err.strip().splitlines()[-1]
        == f"pgtorchrl: error: interrupted; the MLflow run {run.info.run_id} is marked KILLED"
    )
    assert run.info.status == "KILLED"


def test_build_failure_opens_no_run(store, tmp_path):
    # a Box env with a discrete distribution passes validation but not the build: one line, exit 2
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        VPG.read_text()
        .replace("env_id: CartPole-v1", "env_id: Pendulum-v1")
        .replace("activation: tanh\n\ncritic", "activation: tanh\n  distribution: categorical\n\ncritic")
    )
    proc = run_cli(str(spec))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {spec}: distribution 'categorical' needs discrete actions but the env's action spec "
        "is BoundedContinuous; use 'normal' or 'tanh_normal'."
    ]
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("vpg-cartpole")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


@pytest.mark.parametrize(
    "pipeline", sorted(str(p.relative_to(ROOT / "pipelines")) for p in (ROOT / "pipelines").rglob("*.yaml"))
)
def test_every_shipped_pipeline_trains_briefly(store, pipeline):
    """Every spec under pipelines/ (mujoco/ included) trains a batch; a study's spec trains its base spec."""
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import train

    spec = load_spec(
        ROOT / "pipelines" / pipeline,
        # eval.max_steps: the short corridor's deterministic policy never ends an episode; one epoch of updates
        [
            "train.total_frames=1024",
            "eval.every_frames=null",
            "eval.episodes=2",
            "eval.max_steps=1000",
            "tune=null",
            "train.epochs=1",
        ],
    )
    result = train(spec)
    assert result.frames >= 1024 and result.eval_return is not None
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    keys = set(run.data.metrics)
    assert {"train/loss_actor", "train/loss_objective"} & keys  # pgtorchrl's actor term, or TorchRL PPO's
    assert {
        "train/entropy",
        "train/advantage_mean",
        "train/advantage_std",
        "train/approx_kl",
        "eval/return_mean",
    } <= keys
    if spec.critic is not None:
        assert {"train/loss_critic", "train/explained_variance"} <= keys
    if spec.optim.name in ("npg", "trpo"):
        assert {
            "train/kl",
            "train/line_search_steps",
            "train/cg_residual",
            "train/surrogate_improvement",
            "train/step_size",
        } <= keys


def test_two_runs_on_one_store_at_once_both_complete(store):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pgtorchrl", str(VPG), *TINY, f"seed={s}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (1, 2)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("vpg-cartpole").experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss_actor")] == [256, 512, 768, 1024]
        assert "environment" in {a.path for a in client.list_artifacts(run.info.run_id)}
    out = run_cli("compare", "--experiment", "vpg-cartpole", "--output", "cmp.png")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("cmp.png: 2 runs") and Path("cmp.png").read_bytes()[:4] == b"\x89PNG"
    assert run_cli("compare").returncode == 2

"""Checkpoints and `pgtorchrl resume`: an interrupted run continues into the same MLflow run and
ends with the learning curve of a run that never stopped (same spec and seed, CPU)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

import pgtorchrl.trainers.trainer as trainer
from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec

ROOT = Path(__file__).resolve().parents[1]
SHORT = [
    "eval.every_frames=1024",
    "eval.episodes=3",
    "eval.target_return=null",
    "tracking.checkpoint_every_frames=1024",
]
MINATAR = ["train.total_frames=5120", "env.num_envs=4", "collector.frames_per_batch=512", *SHORT]
CASES = {  # one per kind of collection state: (pipeline, overrides)
    "gym_native": ("vpg_cartpole", ["train.total_frames=5120", *SHORT]),  # native collector, gymnasium envs
    "gymwrapper": (
        "vpg_cartpole",
        ["env.name=gym", "collector.name=sync", "train.total_frames=5120", *SHORT],
    ),  # TorchRL's Collector
    "torch_native": ("vpg_cartpole_torch", ["train.total_frames=5120", *SHORT]),
    "native_normalized": (
        "vpg_cartpole",
        [
            "train.total_frames=5120",
            *SHORT,
            "env.normalize_observations=true",
            "env.clip_observations=5.0",
            "env.normalize_rewards=true",
        ],
    ),  # gym_native's own statistics
    "normalized": (
        "vpg_cartpole",
        [
            "env.name=gym",
            "collector.name=sync",
            "train.total_frames=5120",
            *SHORT,
            "env.transforms=[{name: torchrl.VecNormV2, decay: 0.99}, {name: torchrl.RewardScaling, scale: 0.1},"
            " {name: normalize_reward, gamma: 0.9}]",
        ],
    ),  # running statistics of observations and of the return (NormalizeReward's extra state)
    "episodes": (
        "reinforce_cartpole",
        ["train.total_frames=6000", "env.num_envs=4", *SHORT, "tracking.checkpoint_every_frames=256"],
    ),
    # images through a CNN and MinAtar's game state (envs.state.INNER_STATE), as shipped: gym_native's
    # sub-envs and the native collector; then on TorchRL's GymWrapper and Collector
    "minatar": ("ppo_minatar_breakout", MINATAR),
    "minatar_torchrl": ("ppo_minatar_breakout", [*MINATAR, "env.name=gym", "collector.name=sync"]),
    "atari": (  # the ALE's emulator state and the frame buffers of the preprocessing wrappers
        "ppo_atari_breakout",
        ["train.total_frames=3840", "env.num_envs=4", "collector.frames_per_batch=256", *SHORT],
    ),
    "lstm": (  # the hidden states of the episodes in flight, carried by TorchRL's Collector
        "ppo_lstm_cartpole_novel",
        ["train.total_frames=5120", "env.num_envs=4", "collector.frames_per_batch=256", *SHORT, "train.epochs=2"],
    ),
    "minatar_shared": (  # one CNN trunk in actor and critic (critic.share_encoder), two optimizers
        "ppo_minatar_breakout",
        [*MINATAR, "critic.share_encoder=true"],
    ),
}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pgtorchrl", *args], capture_output=True, text=True, timeout=600)


def history(client, run_id):
    run = client.get_run(run_id)
    return {
        key: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]
        for key in run.data.metrics
        if not key.startswith("time/")
    }


def interrupted_run(spec, at_iteration: int) -> str:
    """Trains in this process and presses Ctrl-C during iteration ``at_iteration``."""
    real = trainer.update

    def update(p, batch, iteration, frames):
        if iteration == at_iteration:
            raise KeyboardInterrupt
        return real(p, batch, iteration, frames)

    trainer.update = update
    run = trainer.TrackedRun(spec)
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.train(spec, pipeline=build_pipeline(spec), run=run)
    finally:
        trainer.update = real
    return run.wait_opened()  # it was opened before the interrupt


# the main pipeline's collection (gym_native) by default; the rest with -m slow (CI runs both)
SLOW_CASES = {
    "gymwrapper",
    "episodes",
    "normalized",
    "native_normalized",
    "minatar",
    "minatar_torchrl",
    "minatar_shared",
    "atari",
    "lstm",
    "torch_native",
}
NEEDS = {  # case: the extra's package
    **{name: ("minatar", "minatar") for name in CASES if name.startswith("minatar")},
    "atari": ("ale_py", "atari"),
}


def _case(name: str):
    marks = [pytest.mark.slow] if name in SLOW_CASES else []
    if name in NEEDS:
        package, extra = NEEDS[name]  # the case's package, and the extra that installs it
        missing = importlib.util.find_spec(package) is None
        marks.append(pytest.mark.skipif(missing, reason=f"needs {package} (pip install -e '.[{extra}]')"))
    return pytest.param(name, marks=marks)


@pytest.mark.parametrize("name", [_case(n) for n in CASES])
def test_resumed_run_matches_the_uninterrupted_one(store, name):
    pipeline, overrides = CASES[name]
    path = ROOT / "pipelines" / f"{pipeline}.yaml"
    spec = load_spec(path, overrides)
    run_id = interrupted_run(spec, at_iteration=9)
    client = MlflowClient(store)
    assert client.get_run(run_id).info.status == "KILLED"
    checkpoints = [f.path for f in client.list_artifacts(run_id, "checkpoints")]
    assert checkpoints, "the interrupted run kept its checkpoints"

    resumed = cli("resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert f"mlflow run {run_id}" in resumed.stdout  # the same run, continued
    assert cli(str(path), *overrides).returncode == 0
    runs = client.search_runs([client.get_run(run_id).info.experiment_id], order_by=["start_time DESC"])
    fresh = next(r for r in runs if r.info.run_id != run_id)

    after = client.get_run(run_id)
    assert after.info.status == "FINISHED"
    assert int(after.data.tags["pgtorchrl.resumed_at_frames"]) > 0
    resumed_curve, fresh_curve = history(client, run_id), history(client, fresh.info.run_id)
    assert len(resumed_curve["rollout/episode_return"]) >= 8
    assert resumed_curve == fresh_curve  # every metric at every step, no step logged twice


def test_checkpoints_load_with_weights_only_and_hold_the_whole_state(store):
    from pgtorchrl.experiments.loading import latest_checkpoint

    spec = load_spec(ROOT / "pipelines" / "vpg_cartpole.yaml", CASES["gym_native"][1])
    result = trainer.train(spec)
    state = latest_checkpoint(result.run_id)  # torch.load(..., weights_only=True) inside
    assert state["progress"]["frames"] == result.frames == 5120
    assert {"actor", "critic", "actor_optim", "critic_optim", "rng", "env", "eval_env", "collector"} <= state.keys()
    assert len(state["env"]["tensors"]["envs"]) == spec.env.num_envs  # every gymnasium sub-env's state
    actor = build_pipeline(spec).actor
    actor.load_state_dict(state["actor"])
    assert all(torch.equal(a, b) for a, b in zip(actor.state_dict().values(), state["actor"].values()))


def test_resume_refuses_what_it_cannot_continue(store):
    spec = load_spec(ROOT / "pipelines" / "vpg_cartpole.yaml", CASES["gym_native"][1])
    finished = trainer.train(spec).run_id
    out = cli("resume", finished)
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == f"pgtorchrl: error: run {finished} is FINISHED: nothing to resume (train a new run instead)"
    )
    missing = cli("resume", "0123456789abcdef0123456789abcdef")
    assert missing.returncode == 2 and missing.stderr.startswith("pgtorchrl: error: run '0123456789abcdef")
    assert len(missing.stderr.strip().splitlines()) == 1

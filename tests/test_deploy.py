"""Issue 28: a trained policy leaves a run as an MLflow Model (``mlflow.pyfunc``, models from
code), is registered with a ``champion`` alias that only a better evaluation takes, is served by
a real ``mlflow models serve`` process, and never runs code from its files when they are altered."""

import json
import os
import pickle
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from torchrl.envs import ExplorationType, set_exploration_type

from pgtorchrl import load_actor
from pgtorchrl.cli import main
from pgtorchrl.deploy.policy import MAX_ROWS, DeployedPolicy, PolicyInputError
from pgtorchrl.deploy.scoring_errors import one_line
from pgtorchrl.deploy.serving import served
from pgtorchrl.experiments.loading import DamagedArtifactError
from pgtorchrl.record.tracking import mlflow_client
from pgtorchrl.trainers.checkpoint import checkpoint_path

ROOT = Path(__file__).resolve().parents[1]
VPG = str(ROOT / "pipelines" / "vpg_cartpole.yaml")
PENDULUM = str(ROOT / "pipelines" / "vpg_pendulum.yaml")
MASKED = str(ROOT / "pipelines" / "ppo_masked.yaml")
MINATAR = str(ROOT / "pipelines" / "ppo_minatar_breakout.yaml")
LSTM = str(ROOT / "pipelines" / "ppo_lstm_cartpole_novel.yaml")
QUIET = ["eval.every_frames=null", "eval.target_return=null", "tracking.checkpoint_every_frames=null"]
NORMALIZED = "env.transforms=[{name: torchrl.VecNormV2, in_keys: [observation]}]"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three CartPole runs registered as ``cartpole`` (two trained, then an untrained one; the
    champion after each is recorded), and a Gaussian policy behind observation normalization
    registered as ``pendulum``, a masked-action policy (two named inputs) as ``masked``, a CNN
    policy (MinAtar Breakout) as ``minatar``, and an LSTM policy (behind VecNormV2) as ``memory``."""
    folder = tmp_path_factory.mktemp("deploy")
    uri = f"sqlite:///{folder}/mlflow.db"
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        champions = []
        for seed, frames in ((1, 4096), (0, 4096), (0, 256)):
            args = [VPG, f"seed={seed}", f"train.total_frames={frames}", "tracking.register_model=cartpole", *QUIET]
            assert main(args) == 0
            champions.append(mlflow_client(uri).get_model_version_by_alias("cartpole", "champion").version)
        assert main([PENDULUM, "train.total_frames=3200", NORMALIZED, "tracking.register_model=pendulum", *QUIET]) == 0
        assert main([MASKED, "train.total_frames=640", "tracking.register_model=masked", *QUIET]) == 0
        # PyTorch's default init: the pipeline's orthogonal init gives the policy head a gain of 0.01,
        # so after 1024 frames its argmax is one action everywhere and the export parity below would
        # compare constant answers
        minatar = [MINATAR, "train.total_frames=1024", "actor.ortho_init=false", "tracking.register_model=minatar"]
        assert main([*minatar, *QUIET]) == 0
        assert main([LSTM, "train.total_frames=256", "tracking.register_model=memory", *QUIET]) == 0
        yield folder, uri, champions
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI")
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def _versions(uri, name):
    client = mlflow_client(uri)
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    return client, versions


def test_the_champion_alias_moves_only_to_a_better_evaluation(store):
    folder, uri, champions = store
    client, versions = _versions(uri, "cartpole")
    returns = [float(v.tags["eval_return"]) for v in versions]
    assert len(returns) == 3
    runs = [client.get_run(v.run_id) for v in versions]
    assert [r.data.metrics["eval/return_mean"] for r in runs] == pytest.approx(returns)
    # seed 1 then seed 0 (better at this budget), then an untrained run (worse than both)
    assert returns[0] < returns[1] and returns[2] < returns[1], returns
    assert [int(v) for v in champions] == [1, 2, 2]  # the first, then the better second; not the third
    # each version is an MLflow Model logged with its run (its output at the run's frames), READY,
    # with the run's final evaluation linked to it
    for version, run, eval_return in zip(versions, runs, returns):
        model_id = version.source.removeprefix("models:/")
        assert version.source == run.data.tags["model.policy"]
        final = max(m.step for m in client.get_metric_history(run.info.run_id, "eval/return_mean"))
        assert [(m.model_id, m.step) for m in run.outputs.model_outputs] == [(model_id, final)]
        model = client.get_logged_model(model_id)
        assert str(model.status) == "READY" and model.source_run_id == run.info.run_id
        assert {m.key: m.value for m in model.metrics}["eval/return_mean"] == pytest.approx(eval_return)


def _actions(actor, observations) -> np.ndarray:
    """``load_actor``'s deterministic actions as the env takes them (an index for a discrete action)."""
    named = observations if isinstance(observations, dict) else {"observation": observations}
    td = TensorDict({k: torch.from_numpy(v) for k, v in named.items()}, batch_size=[len(named["observation"])])
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        action = actor(td)["action"]
    return action.numpy() if action.is_floating_point() else action.argmax(-1).numpy()


def _masked_inputs(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    mask = np.zeros((rows, 50), np.int8)
    for row in mask:
        row[rng.choice(50, 2, replace=False)] = 1
    return {"observation": rng.uniform(0, 1, (rows, 50)).astype(np.float32), "action_mask": mask}


def _recurrent_inputs(rows: int) -> dict[str, np.ndarray]:
    """Masked-velocity CartPole steps mid-episode and at a start, each with its own hidden state."""
    rng = np.random.default_rng(3)
    return {
        "observation": rng.normal(scale=[1.0, 0.0, 0.1, 0.0], size=(rows, 4)).astype(np.float32),  # velocities 0
        "is_init": rng.random((rows, 1)) < 0.2,
        "recurrent_state_h": rng.normal(scale=0.3, size=(rows, 1, 64)).astype(np.float32),
        "recurrent_state_c": rng.normal(scale=0.3, size=(rows, 1, 64)).astype(np.float32),
    }


OBSERVATIONS: dict[str, Any] = {
    "memory": _recurrent_inputs(1000),
    "masked": _masked_inputs(1000),
    "cartpole": np.random.default_rng(0).normal(scale=[1.0, 1.0, 0.1, 1.0], size=(1000, 4)).astype(np.float32),
    "pendulum": np.random.default_rng(1).uniform([-1, -1, -8], [1, 1, 8], size=(1000, 3)).astype(np.float32),
}


@pytest.mark.parametrize("name", ["cartpole", "pendulum", "masked", "memory"])
def test_the_mlflow_model_in_a_fresh_process_acts_as_load_actor(store, name, tmp_path):
    """A recurrent policy's model (``memory``) answers each row's next hidden states too, equal
    to those of the actor ``load_actor`` wraps, stepped from the same states."""
    folder, uri, _ = store
    inputs = OBSERVATIONS[name] if isinstance(OBSERVATIONS[name], dict) else {"observation": OBSERVATIONS[name]}
    np.savez(tmp_path / "obs.npz", **inputs)
    script = (
        "import sys, numpy as np, mlflow\n"
        f"model = mlflow.pyfunc.load_model('models:/{name}@champion')\n"
        f"inputs = dict(np.load('{tmp_path / 'obs.npz'}'))\n"
        "out = model.predict(inputs if len(inputs) > 1 else inputs['observation'])\n"
        "np.savez(sys.argv[1], **(out if isinstance(out, dict) else {'action': out}))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.npz")], env=env, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    answer = dict(np.load(tmp_path / "a.npz"))
    served = answer.pop("action")
    actor = load_actor(f"models:/{name}@champion", uri)
    if name == "memory":  # the CarriedMemory's actor, given each row's state as the model was
        actor = actor.policy
        td = TensorDict({k: torch.from_numpy(v) for k, v in inputs.items()}, batch_size=[1000])
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            stepped = actor(td)
        assert sorted(answer) == ["next_recurrent_state_c", "next_recurrent_state_h"]
        for key, value in answer.items():
            np.testing.assert_allclose(value, stepped["next", key.removeprefix("next_")].numpy(), atol=1e-5)
    expected = _actions(actor, OBSERVATIONS[name])
    assert served.shape == expected.shape and served.dtype == expected.dtype
    if name in ("cartpole", "memory"):
        assert (served == expected).all() and 0 < expected.mean() < 1  # both actions occur
    elif name == "masked":
        assert (served == expected).all()
        assert inputs["action_mask"][np.arange(1000), served].all()  # only legal actions
    else:
        np.testing.assert_allclose(served, expected, atol=1e-5)
        assert served.std() > 0.01


def test_a_policy_refuses_what_it_cannot_act_on_in_one_line(store):
    folder, uri, _ = store
    policy = DeployedPolicy.load("models:/cartpole@champion", uri)
    good = OBSERVATIONS["cartpole"][:3]
    cases = {
        "has shape [3, 3]: expected observation: float32 [-1, 4]": good[:, :3],
        "holds NaN or infinite values": np.where(np.eye(3, 4, dtype=bool), np.inf, good),
        "is an empty batch": good[:0],
        f"a batch of {MAX_ROWS + 1} rows: at most {MAX_ROWS} rows per call": np.zeros((MAX_ROWS + 1, 4), np.float32),
        "has dtype <U1, not numbers": np.array([list("abcd")]),
        "unknown input 'speed'": {"speed": good},
    }
    for expected, bad in cases.items():
        with pytest.raises(PolicyInputError) as err:
            policy(bad)
        assert expected in str(err.value) and "\n" not in str(err.value)
    assert (policy(good) == _actions(load_actor("models:/cartpole@champion", uri), good)).all()
    assert policy(good[0]).shape == (1,)  # one row without its batch dimension
    import pandas as pd

    assert (policy(pd.DataFrame(good)) == policy(good)).all()  # a DataFrame: its rows
    masked = DeployedPolicy.load("models:/masked@champion", uri)
    inputs = _masked_inputs(3)
    for expected, bad in {
        "missing input 'action_mask': expected observation: float32 [-1, 50]; action_mask: int8 [-1, 50]": {
            "observation": inputs["observation"]
        },
        "this policy reads 2 inputs: send them by name": inputs["observation"],
        "action_mask holds fractions": {**inputs, "action_mask": inputs["action_mask"] * 0.5},
        "action_mask has 2 rows, the other inputs 3": {**inputs, "action_mask": inputs["action_mask"][:2]},
    }.items():
        with pytest.raises(PolicyInputError) as err:
            masked(bad)
        assert expected in str(err.value) and "\n" not in str(err.value)


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_mlflow_models_serve_answers_as_load_actor_and_survives_bad_requests(store):
    folder, uri, _ = store
    with served("models:/cartpole@champion", env={**os.environ, "MLFLOW_TRACKING_URI": uri}) as url:
        observations = OBSERVATIONS["cartpole"]
        expected = _actions(load_actor("models:/cartpole@champion", uri), observations)
        good = json.dumps({"inputs": observations.tolist()}).encode()
        status, answer = _post(url, good)
        assert status == 200 and answer["predictions"] == expected.tolist()
        expected_input = "expected observation: float32 [-1, 4]"
        bad = {  # MLflow refuses the first ones itself, the policy's own checks the others: one line each
            "wrong shape": (b'{"inputs": [[0.1, 0.2, 0.3]]}', f"observation has shape [1, 3]: {expected_input}"),
            "wrong rank": (b'{"inputs": [[[0.1, 0.2, 0.3, 0.4]]]}', f"shape [1, 1, 4]: {expected_input}"),
            "wrong dtype": (b'{"inputs": [["a", "b", "c", "d"]]}', f"dtype <U1, not numbers: {expected_input}"),
            "a dict": (b'{"inputs": {"speed": [[0, 0, 0, 0]]}}', f"unknown input 'speed': {expected_input}"),
            "empty": (b'{"inputs": []}', "observation is an empty batch: send at least one row"),
            "no inputs": (b'{"observations": [[0, 0, 0, 0]]}', "the request has no 'inputs' (got ['observations'])"),
            "malformed JSON": (b'{"inputs": [[0.1, 0.2', "the request is not JSON (Expecting ',' delimiter"),
            "NaN": (b'{"inputs": [[NaN, 0, 0, 0]]}', "observation holds NaN or infinite values"),
            "inf": (b'{"inputs": [[0, Infinity, 0, 0]]}', "observation holds NaN or infinite values"),
            "100k rows": (json.dumps({"inputs": [[0.0] * 4] * 100_000}).encode(), "at most 10000 rows per call"),
        }
        for what, (body, reason) in bad.items():
            status, answer = _post(url, body)
            assert 400 <= status < 500 and reason in answer["message"], (what, status, answer)
            assert "\n" not in answer["message"] and len(answer["message"]) < 300, (what, answer)  # not the request
            status, answer = _post(url, good)  # still serving
            assert status == 200 and answer["predictions"] == expected.tolist(), what


def test_what_the_policy_accepts_but_mlflow_refuses_keeps_mlflows_words_on_one_line(store):
    """A ``params`` value or a DataFrame body: MLflow's reason, without the request it quotes."""
    _, uri, _ = store
    policy = DeployedPolicy.load("models:/cartpole@champion", uri)
    expected_input = "expected observation: float32 [-1, 4]"
    request = b'{"inputs": [[0, 0, 0, 0]], "params": {"deterministic": "maybe"}}'
    reason = "Invalid parameters found: deterministic is not boolean"
    message = f"Failed to predict data '[[0. 0. 0. 0.]]'. \nError: {reason}"
    assert one_line(message, request, policy) == f"{reason}: {expected_input}"
    quoted = "0.5 " * 5000
    message = (
        f"Failed to predict data '{quoted}'. \nError: Failed to enforce schema of data '{quoted}' with schema"
        " '[Tensor('float32', (-1, 4))]'. Error: The input pandas dataframe column 'a'\ncontains scalar values."
    )
    frame = b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}}'
    assert one_line(message, frame, policy) == (
        f"The input pandas dataframe column 'a' contains scalar values: {expected_input}"
    )
    assert len(one_line("x" * 5000, frame, None)) == 300  # a message of MLflow's own that embeds data: cut


class _RunsCode:
    """A pickle that would create a file if unpickled without ``weights_only``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("damage", ["random bytes", "code in a pickle", "another network's weights"])
def test_an_altered_model_fails_in_one_line_and_runs_nothing(store, tmp_path, damage):
    import mlflow

    folder, uri, _ = store
    mlflow.set_tracking_uri(uri)
    local = Path(mlflow.artifacts.download_artifacts("models:/cartpole@champion", dst_path=str(tmp_path)))
    weights = local / "artifacts" / "actor.pt"
    marker = tmp_path / "ran"
    if damage == "random bytes":
        weights.write_bytes(os.urandom(512))
    elif damage == "code in a pickle":
        weights.write_bytes(pickle.dumps(_RunsCode(marker)))
    else:
        torch.save({"weight": torch.zeros(3)}, weights)
    with pytest.raises(DamagedArtifactError) as err:
        load_actor(str(local))
    message = str(err.value)
    assert "\n" not in message and ("does not load as weights" in message or "do not fit" in message), message
    assert not marker.exists()


def _minatar_inputs(rows: int) -> np.ndarray:
    return np.random.default_rng(3).random((rows, 10, 10, 4)) < 0.1


def _inputs(name: str, rows: int = 1000) -> dict:
    if name == "minatar":
        return {"observation": _minatar_inputs(rows)}
    found = OBSERVATIONS[name]
    return found if isinstance(found, dict) else {"observation": found[:rows]}


@pytest.mark.parametrize("name", ["cartpole", "pendulum", "masked", "minatar"])
def test_onnx_and_pt2_exports_act_as_the_policy(store, tmp_path, name):
    import onnxruntime

    from pgtorchrl.deploy.export import export_policy

    folder, uri, _ = store
    policy = DeployedPolicy.load(f"models:/{name}@champion", uri)
    inputs = _inputs(name)
    expected = policy(inputs if len(inputs) > 1 else inputs["observation"])
    assert (expected == _actions(load_actor(f"models:/{name}@champion", uri), inputs)).all()
    onnx = onnxruntime.InferenceSession(str(export_policy(policy, tmp_path / "p.onnx", "onnx")))
    assert [i.name for i in onnx.get_inputs()] == list(inputs) and [o.name for o in onnx.get_outputs()] == ["action"]
    from_onnx = onnx.run(None, inputs)[0]
    program = torch.export.load(str(export_policy(policy, tmp_path / "p.pt2", "pt2")))
    with torch.no_grad():
        from_pt2 = program.module()(*(torch.from_numpy(v) for v in inputs.values())).numpy()
    for got in (from_onnx, from_pt2):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        if expected.dtype.kind == "f":  # a Gaussian's mean (behind the run's normalization)
            np.testing.assert_allclose(got, expected, atol=1e-5)
        else:
            assert (got == expected).all()
    assert len(np.unique(expected)) > 1  # the policy does not answer one constant action


def test_a_recurrent_policy_deploys_with_its_state_and_steps_an_episode_as_load_actor(store, tmp_path, capsys):
    """The LSTM policy (behind VecNormV2) carries its state through every deployed form: its MLflow
    Model (in this process and served by a real ``mlflow models serve``) and its ONNX and pt2
    exports take ``is_init`` and the hidden states as inputs and answer the action and the next
    states. Stepped through an episode, each gives ``load_actor``'s actions and states."""
    import gymnasium as gym
    import mlflow
    import onnxruntime

    folder, uri, _ = store
    client = mlflow_client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ppo-lstm-cartpole-novel").experiment_id])
    assert run.data.tags["model.policy"].startswith("models:/m-")
    for format in ("onnx", "pt2"):
        assert main(["export", run.info.run_id, "--format", format, "--out", str(tmp_path / f"p.{format}")]) == 0
    printed = capsys.readouterr().out
    assert "is_init: bool [-1, 1]; recurrent_state_h: float32 [-1, 1, 64]" in printed
    assert "outputs action: int64 [-1]; next_recurrent_state_h: float32 [-1, 1, 64]" in printed
    onnx = onnxruntime.InferenceSession(str(tmp_path / "p.onnx"))
    program = torch.export.load(str(tmp_path / "p.pt2")).module()
    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model("models:/memory@champion")
    names = ("recurrent_state_h", "recurrent_state_c")
    assert [i.name for i in pyfunc.metadata.get_input_schema().inputs] == ["observation", "is_init", *names]
    assert [o.name for o in pyfunc.metadata.get_output_schema().inputs] == ["action", *(f"next_{n}" for n in names)]
    actor = load_actor(run.info.run_id, uri)  # a CarriedMemory
    env = gym.make("pgtorchrl/CartPoleNoVel-v1")
    obs, _ = env.reset(seed=0)
    zeros = np.zeros((1, 1, 64), np.float32)
    state = {form: (zeros, zeros) for form in ("onnx", "pt2", "pyfunc", "served")}
    first, steps, done = True, 0, False
    with served("models:/memory@champion", env={**os.environ, "MLFLOW_TRACKING_URI": uri}) as url:
        while not done and steps < 200:
            observation = obs[None].astype(np.float32)
            with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
                td = actor(TensorDict(observation=torch.from_numpy(observation), batch_size=[1]))
            expected = int(td["action"].argmax(-1))
            h, c = (td["next", key].numpy() for key in names)
            is_init = np.array([[first]])
            got = {
                "onnx": onnx.run(
                    None, {"observation": observation, "is_init": is_init, **dict(zip(names, state["onnx"]))}
                )
            }
            with torch.no_grad():
                got["pt2"] = [
                    x.numpy()
                    for x in program(
                        torch.from_numpy(observation),
                        torch.from_numpy(is_init),
                        *(torch.from_numpy(x) for x in state["pt2"]),
                    )
                ]
            answer = pyfunc.predict(
                {"observation": observation, "is_init": is_init, **dict(zip(names, state["pyfunc"]))}
            )
            got["pyfunc"] = [answer["action"], *(answer[f"next_{n}"] for n in names)]
            request = {"observation": observation.tolist(), "is_init": is_init.tolist()}
            request.update({n: s.tolist() for n, s in zip(names, state["served"])})
            status, answer = _post(url, json.dumps({"inputs": request}).encode())
            assert status == 200, answer
            predictions = answer["predictions"]
            got["served"] = [
                np.array(predictions["action"]),
                *(np.array(predictions[f"next_{n}"], np.float32) for n in names),
            ]
            for form, (a, nh, nc) in got.items():
                assert int(a[0]) == expected, (form, steps)
                np.testing.assert_allclose(nh, h, atol=1e-5, err_msg=form)
                np.testing.assert_allclose(nc, c, atol=1e-5, err_msg=form)
            state = {form: (nh, nc) for form, (_, nh, nc) in got.items()}
            obs, _, terminated, truncated, _ = env.step(expected)
            done, first, steps = terminated or truncated, False, steps + 1
        # a request without its state is one line naming what the policy takes
        status, answer = _post(url, json.dumps({"inputs": {"observation": [[0.0, 0.0]]}}).encode())
        assert 400 <= status < 500 and "is_init" in answer["message"], answer
    assert steps > 5


def test_the_best_evaluated_policy_is_its_own_model_when_it_is_not_the_final_one(store, tmp_path):
    import mlflow

    folder, uri, _ = store
    every = ["eval.every_frames=2048", "eval.target_return=null", "tracking.checkpoint_every_frames=2048"]
    assert main([VPG, "seed=0", "train.total_frames=8192", "tracking.run_name=best", *every]) == 0
    client = mlflow_client(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("vpg-cartpole").experiment_id], "tags.mlflow.runName = 'best'"
    )
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "eval/return_mean")}
    best = max(history, key=history.get)
    assert best != max(history), history  # seed 0 at this budget: its best evaluation is not its last
    assert run.data.tags["model.policy_best.frames"] == str(best)
    mlflow.set_tracking_uri(uri)
    for model, frames in (("policy_best", best), ("policy", max(history))):
        local = mlflow.artifacts.download_artifacts(run.data.tags[f"model.{model}"], dst_path=str(tmp_path / model))
        weights = torch.load(Path(local) / "artifacts" / "actor.pt", weights_only=True)
        path = client.download_artifacts(run.info.run_id, checkpoint_path(frames), str(tmp_path))
        saved = torch.load(path, weights_only=True)["actor"]
        assert weights.keys() == saved.keys() and all(torch.equal(weights[k], saved[k]) for k in weights), model

"""Spec validation: one test per class of error, each asserting the one-line message."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pgtorchrl.config.spec_file import SpecError
from pgtorchrl.pipeline.parse import flatten, load_spec

ROOT = Path(__file__).resolve().parents[1]
VPG = ROOT / "pipelines" / "vpg_cartpole.yaml"


def error_of(tmp_path, text=None, overrides=()):
    path = tmp_path / "spec.yaml"
    path.write_text(VPG.read_text() if text is None else text)
    with pytest.raises(SpecError) as info:
        load_spec(path, list(overrides))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_shipped_pipelines_are_valid():
    for path in sorted((ROOT / "pipelines").glob("*.yaml")):
        load_spec(path)


def test_malformed_yaml(tmp_path):
    msg = error_of(tmp_path, "env: {name: gym\nactor: [")
    assert msg.startswith("line 2, column 6: malformed YAML")


def test_not_a_mapping(tmp_path):
    assert "must be a YAML mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_unknown_top_level_key(tmp_path):
    assert error_of(tmp_path, overrides=["trian.total_frames=3"]).startswith(
        "trian: unknown key; did you mean 'train'?"
    )


def test_unknown_field_of_a_component(tmp_path):
    msg = error_of(tmp_path, overrides=["advantage.lambda=0.9"])
    assert msg.startswith(
        "advantage.lambda: unknown key; did you mean 'lmbda'? (accepted: name, gamma, normalize, "
        "truncation, gamma_t_factor, lmbda)"
    )


def test_a_misspelt_choice_gets_a_did_you_mean(tmp_path):
    msg = error_of(tmp_path, overrides=["tracking.curve_x=iteratoin"])
    assert (
        msg == "tracking.curve_x: Input should be 'frames' or 'iteration', got 'iteratoin'; did you mean 'iteration'?"
    )


def test_unknown_component_name(tmp_path):
    msg = error_of(tmp_path, overrides=["loss.name=reinforc"])
    assert (
        msg == "loss.name: unknown loss 'reinforc'; did you mean 'reinforce'? (registered: ppo, reinforce, "
        "torchrl.A2CLoss, torchrl.ClipPPOLoss, torchrl.KLPENPPOLoss, torchrl.PPOLoss, torchrl.ReinforceLoss)"
    )


def test_missing_component_name(tmp_path):
    text = VPG.read_text().replace("  name: adam\n  lr: 3.0e-3", "  lr: 3.0e-3")
    assert error_of(tmp_path, text).startswith(
        "optim.name: missing; name a registered optim: adam, npg, rmsprop, sgd, trpo"
    )


def test_wrong_type(tmp_path):
    assert (
        error_of(tmp_path, overrides=["env.num_envs=eight"])
        == "env.num_envs: Input should be a valid integer, got 'eight'"
    )


def test_yaml_scientific_notation_string_is_explained(tmp_path):
    msg = error_of(tmp_path, overrides=["optim.lr=3e-4"])
    assert (
        msg == "optim.lr: Input should be a valid number; got the string '3e-4' (YAML reads 3e-4 as text: write 3.0e-4)"
    )


def test_a_number_given_to_an_integer_field_is_told_to_write_an_integer(tmp_path):
    """Issue 29, item 10: ``1.0e5`` (text to YAML) and ``1.0e+5`` (a float) in an integer field are
    told to write an integer, not sent to a float's spelling that fails again."""
    assert error_of(tmp_path, overrides=["train.total_frames=1.0e5"]) == (
        "train.total_frames: Input should be a valid integer; got the string '1.0e5' (write an integer, e.g. 100000)"
    )
    assert error_of(tmp_path, overrides=["train.total_frames=1.0e+5"]) == (
        "train.total_frames: Input should be a valid integer; got 100000.0 (write an integer, e.g. 100000)"
    )
    assert error_of(tmp_path, overrides=["train.total_frames=2.5"]) == (
        "train.total_frames: Input should be a valid integer; got 2.5 (write an integer)"
    )


def test_missing_env_id(tmp_path):
    msg = error_of(tmp_path, overrides=["env.env_id=CartPoel-v1"])
    assert msg.startswith("env.env_id: unknown gymnasium env id 'CartPoel-v1'; did you mean 'CartPole-v1'")


def test_gamma_outside_unit_interval(tmp_path):
    assert (
        error_of(tmp_path, overrides=["advantage.gamma=1.01"])
        == "advantage.gamma: Input should be less than or equal to 1, got 1.01"
    )


def test_non_positive_frame_count(tmp_path):
    assert (
        error_of(tmp_path, overrides=["train.total_frames=0"])
        == "train.total_frames: Input should be greater than 0, got 0"
    )
    assert error_of(tmp_path, overrides=["collector.frames_per_batch=-8"]).startswith(
        "collector.frames_per_batch: Input should be greater than or equal to 1"
    )


def test_non_finite_number(tmp_path):
    assert error_of(tmp_path, overrides=["optim.lr=.inf"]) == "optim.lr: inf is not a finite number"


def test_missing_required_section(tmp_path):
    raw = yaml.safe_load(VPG.read_text())
    del raw["train"]
    assert error_of(tmp_path, yaml.safe_dump(raw)) == "train: missing required key"


def test_cross_section_rule(tmp_path):
    assert error_of(tmp_path, overrides=["critic=null", "critic_optim=null", "train.value_steps=1"]) == (
        "advantage.name: 'gae' needs a critic: add a `critic:` section or use 'reward_to_go'"
    )
    assert error_of(tmp_path, overrides=["collector.frames_per_batch=100"]) == (
        "collector.frames_per_batch: 100 is not a multiple of env.num_envs=8"
    )


def test_bad_override_syntax(tmp_path):
    assert error_of(tmp_path, overrides=["optim.lr"]).startswith("override 'optim.lr': write key.path=value")


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.yaml: no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_overrides_are_typed_and_flatten_names_every_field():
    spec = load_spec(VPG, ["optim.lr=1.0e-2", "env.num_envs=4", "collector.frames_per_batch=128"])
    assert spec.optim.lr == 0.01 and spec.env.num_envs == 4
    flat = flatten(spec)
    assert flat["optim.lr"] == 0.01 and flat["advantage.lmbda"] == 0.95 and flat["env.env_id"] == "CartPole-v1"


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pgtorchrl", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_reports_a_spec_error_in_one_line_exit_2_and_opens_no_run(tmp_path):
    proc = run_cli(str(VPG), "optim.name=adamw", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: optim.name: unknown optim 'adamw'; did you mean 'adam'? "
        "(registered: adam, npg, rmsprop, sgd, trpo)"
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlruns").exists()  # nothing was tracked


def test_cli_missing_file(tmp_path):
    proc = run_cli("nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "pgtorchrl: error: nope.yaml: no such file"


def test_cli_validate_prints_the_resolved_spec_and_opens_no_run(tmp_path):
    proc = run_cli("validate", str(VPG), "optim.lr=1.0e-3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["optim"]["lr"] == 1.0e-3
    assert "key flow checked" in proc.stderr
    assert not (tmp_path / "mlruns").exists()


def test_estimators_that_need_whole_episodes_say_so(tmp_path):
    reinforce = ROOT / "pipelines" / "reinforce_cartpole.yaml"
    (tmp_path / "r.yaml").write_text(reinforce.read_text())
    msg = error_of(tmp_path, (tmp_path / "r.yaml").read_text(), ["collector={name: sync, frames_per_batch: 256}"])
    assert msg == (
        "collector: without a critic, a batch-end fragment cannot be bootstrapped: use whole-episode batches "
        "(collector.trajs_per_batch, or the 'episodes' collector)"
    )
    msg = error_of(tmp_path, (tmp_path / "r.yaml").read_text(), ["advantage.truncation=bootstrap"])
    assert msg.startswith("advantage.truncation: 'bootstrap' needs a critic to value the cut state")
    msg = error_of(tmp_path, None, ["advantage={name: full_return, gamma: 0.99}"])
    assert msg.startswith("collector: 'full_return' weighs each step by its whole episode's return")
    msg = error_of(
        tmp_path,
        None,
        ["advantage={name: reward_to_go, baseline: critic}", "critic=null", "critic_optim=null", "train.value_steps=1"],
    )
    assert msg.startswith("advantage.baseline: 'critic' needs a critic")


def test_collector_section_reads_like_torchrls_collector_call(tmp_path):
    """``collector: {backend: ray, num_collectors: 4, address: ...}`` (no name) is TorchRL's
    ``Collector(backend="ray", ...)``; the Ray-only fields are refused in this process."""
    spec = load_spec(
        VPG, ["collector={backend: ray, frames_per_batch: 1024, num_collectors: 4, address: 'ray://head:10001'}"]
    )
    assert (spec.collector.name, spec.collector.backend, spec.collector.num_collectors) == ("sync", "ray", 4)
    assert spec.collector.address == "ray://head:10001"
    assert load_spec(VPG, ["collector={frames_per_batch: 1024}"]).collector.backend == "direct"
    assert error_of(tmp_path, overrides=["collector={frames_per_batch: 1024, num_collectors: 4}"]) == (
        "collector.num_collectors: only with backend: ray (backend 'direct' collects in this process)"
    )
    assert error_of(tmp_path, overrides=["collector={backend: rey, frames_per_batch: 1024}"]) == (
        "collector.backend: Input should be 'direct' or 'ray', got 'rey'; did you mean 'ray'?"
    )
    # each of the workers steps env.num_envs envs for an equal share of the batch
    for collector in (
        "{backend: ray, frames_per_batch: 1000, num_collectors: 4}",
        "{name: ray, frames_per_batch: 200}",
    ):
        workers = 4 if "num_collectors" in collector else 2
        assert error_of(tmp_path, overrides=[f"collector={collector}"]) == (
            f"collector.frames_per_batch: {1000 if workers == 4 else 200} does not split evenly over {workers} Ray "
            f"workers of env.num_envs=8 envs: use a multiple of {workers * 8}"
        )

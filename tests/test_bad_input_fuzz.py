"""Malformed specs and overrides, generated: each ends in one clear line and exit code 2.

Runs the CLI's own entry point in-process (so that >= 1000 cases stay fast) on the ``validate``
command, which parses, validates and builds but never tracks; separately, the ``train`` path is
shown to open no MLflow run for a bad spec.
"""

import copy
import io
import string
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtorchrl.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "pipelines" / "vpg_cartpole.yaml").read_text())

SECTIONS = [
    "env",
    "actor",
    "critic",
    "collector",
    "advantage",
    "loss",
    "optim",
    "critic_optim",
    "train",
    "eval",
    "tracking",
]
KEY_PATHS = [f"{s}.{k}" for s in SECTIONS if isinstance(BASE.get(s), dict) for k in BASE[s]] + [
    "seed",
    "experiment",
    "device",
]

junk_scalars = st.one_of(
    st.text(alphabet=string.printable, max_size=12),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.sampled_from(["3e-4", "1e6", "CartPol-v1", "Foo-v0", "adamw", "gea", ".nan", "-.inf", "[", "{a: b"]),
)


def accepted_at(section: str) -> list[str]:
    """The keys the spec accepts in ``section`` of BASE (top level for ``""``), optional ones included."""
    from pgtorchrl.pipeline.messages import fields_at

    loc = (
        (section, BASE[section]["name"])
        if section and isinstance(BASE[section], dict) and "name" in BASE[section]
        else (section,)
    )
    return fields_at(loc if section else ())


def mutate(draw_value, path: str, spec: dict) -> dict:
    node = spec
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
    node[last] = draw_value
    return spec


@st.composite
def broken_specs(draw):
    spec = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["value", "unknown_key", "drop_key", "section_type", "yaml_text"]))
    if kind == "value":
        return yaml.safe_dump(mutate(draw(junk_scalars), draw(st.sampled_from(KEY_PATHS)), spec)), "value"
    if kind == "unknown_key":
        section = draw(st.sampled_from(["", *SECTIONS]))
        key = draw(st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10))
        path = f"{section}.{key}" if section else key
        if key in accepted_at(section) or key in BASE or (section and key == "name"):
            path = path + "_x"  # a key the spec accepts there (optional fields included) is not unknown
        return yaml.safe_dump(mutate(1, path, spec)), "unknown_key"
    if kind == "drop_key":
        section = draw(
            st.sampled_from(["env", "actor", "collector", "advantage", "loss", "optim", "train", "experiment"])
        )
        if section in ("env", "collector", "train") and draw(st.booleans()):
            spec[section].pop(next(iter(k for k in spec[section] if k != "name" or section != "x")), None)
        else:
            spec.pop(section)
        return yaml.safe_dump(spec), "drop_key"
    if kind == "section_type":
        section = draw(st.sampled_from(SECTIONS))
        spec[section] = draw(st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
        return yaml.safe_dump(spec), "section_type"
    text = yaml.safe_dump(spec)
    cut = draw(st.integers(min_value=0, max_value=len(text)))
    insert = draw(st.sampled_from([": :", "\t", "[", "{", "- - -", "!!python/object:os.system", "\x00", "&a *b"]))
    return text[:cut] + insert + text[cut:], "yaml_text"


ALWAYS_INVALID = ("unknown_key", "section_type")
"""Mutations no valid spec can come out of (the others may land on a valid value)."""


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(case=broken_specs())
def test_malformed_specs_fail_in_one_line_with_exit_2(tmp_path, case):
    text, kind = case
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    code, _, err = run_cli(["validate", str(path)])
    if code == 0:
        assert kind not in ALWAYS_INVALID, (kind, text)  # an unknown key or a section that is not a mapping
        return  # the mutation happened to produce a valid spec (e.g. an in-range number)
    assert code == 2, (kind, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgtorchrl: error: {path}"), (kind, err)
    assert "Traceback" not in err


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(KEY_PATHS + ["nope", "train.nope", "optim.lrr"]), value=junk_scalars.map(str))
def test_malformed_overrides_fail_in_one_line_with_exit_2(key, value):
    code, _, err = run_cli(["validate", str(ROOT / "pipelines" / "vpg_cartpole.yaml"), f"{key}={value}"])
    if code == 0:
        return
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_bad_spec_given_to_train_opens_no_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    code, _, err = run_cli([str(ROOT / "pipelines" / "vpg_cartpole.yaml"), "env.env_id=Nope-v9"])
    assert code == 2 and "unknown gymnasium env id 'Nope-v9'" in err
    assert not (tmp_path / "mlflow.db").exists()


FIXED_CASES = {  # one malformed spec of every kind, each invalid whatever the draw
    "value": lambda spec: {**spec, "optim": {**spec["optim"], "lr": "3e-4"}},
    "unknown_key": lambda spec: {**spec, "train": {**spec["train"], "nope": 1}},
    "drop_key": lambda spec: {k: v for k, v in spec.items() if k != "env"},
    "section_type": lambda spec: {**spec, "actor": 5},
    "non_finite": lambda spec: {**spec, "optim": {**spec["optim"], "lr": float("nan")}},
    "bad_name": lambda spec: {**spec, "experiment": "a\x00b"},
    "huge_sweep": lambda spec: {**spec, "sweep": {"seed": list(range(1000)), "optim.lr": [1.0e-3] * 1000}},
}
RAW_CASES = {
    "yaml_text": lambda text: text.replace("env:", "env: [", 1),
    "duplicate_key": lambda text: text + "\nseed: 4\n",
    "alias_bomb": lambda text: (
        "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else '1'}]\n" for p, c in zip(["", *"abcdefgh"], "abcdefghi")
        )
        + text
    ),
}


@pytest.mark.parametrize("kind", [*FIXED_CASES, *RAW_CASES])
def test_every_malformed_kind_fails_the_train_command_in_one_line_and_leaves_no_run(tmp_path, monkeypatch, kind):
    """The whole train command (not only validate): exit 2, one line, no traceback, no run RUNNING."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    text = (ROOT / "pipelines" / "vpg_cartpole.yaml").read_text()
    text = RAW_CASES[kind](text) if kind in RAW_CASES else yaml.safe_dump(FIXED_CASES[kind](copy.deepcopy(BASE)))
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    code, out, err = run_cli([str(path)])
    assert code == 2 and out == "", (kind, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pgtorchrl: error: {path}") and "Traceback" not in err, (kind, err)
    if (tmp_path / "mlflow.db").exists():
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])

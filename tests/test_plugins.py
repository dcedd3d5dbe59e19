"""Components from user code: only from modules a spec lists under `plugins:`."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VPG = ROOT / "pipelines" / "vpg_cartpole.yaml"
PLUGIN = '''
from pathlib import Path
from typing import Annotated
from pydantic import Field
from pgtorchrl.components import ACTORS

Path("imported.marker").write_text("my_components was imported")

@ACTORS.register("tiny_mlp")
def tiny_mlp(env, *, width: Annotated[int, Field(ge=1)] = 16):
    """An MLP actor with one hidden layer of `width` units."""
    from pgtorchrl.modules.models import make_actor
    return make_actor(env.observation_spec["observation"], env.action_spec, hidden_sizes=[width])

def adamw(params, *, lr: float = 1e-3, weight_decay: float = 0.01):
    """torch.optim.AdamW."""
    import torch
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

def no_wiring(*, lr: float = 1e-3):
    """An optimizer factory that forgot its params."""

def broken_actor(env, *, width: int = 8):
    """An actor factory that fails when it is built."""
    raise RuntimeError(f"no actor of width {width}")

class NotAnOptimizer:
    def __init__(self, params, *, lr: float = 1e-3):
        self.params = list(params)
'''


def cli(tmp_path, *args):
    (tmp_path / "my_components.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    return subprocess.run(
        [sys.executable, "-m", "pgtorchrl", *args], capture_output=True, text=True, cwd=tmp_path, env=env
    )


def test_listed_plugin_registers_components_and_trains(tmp_path):
    out = cli(
        tmp_path,
        str(VPG),
        "plugins=[my_components]",
        "actor={name: tiny_mlp, width: 8}",
        'optim={name: "my_components:adamw", lr: 0.003}',
        "train.total_frames=512",
        "eval.episodes=2",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(("finished:", "solved:"))
    bad = cli(tmp_path, "validate", str(VPG), "plugins=[my_components]", "actor={name: tiny_mlp, width: 0}")
    assert bad.returncode == 2  # a plugin's fields are validated like pgtorchrl's own
    assert bad.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: actor.width: Input should be greater than or equal to 1, got 0"
    ]


def test_unlisted_module_is_never_imported(tmp_path):
    out = cli(tmp_path, "validate", str(VPG), 'optim={name: "my_components:adamw"}')
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: optim.name: 'my_components:adamw' imports code from 'my_components', which "
        "the spec does not trust: add it under plugins: [my_components] (or use a registered name)"
    ]
    assert not (tmp_path / "imported.marker").exists()


def test_a_plugin_that_exits_at_import_is_named(tmp_path):
    """Issue 29, item 8: a plugin calling sys.exit(3) as it is imported ended the command with exit 3
    and no message; now the spec's one line names the plugin, exit 2."""
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    out = cli(tmp_path, "validate", str(VPG), "plugins=[exits]")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: plugins: importing 'exits' called sys.exit(3)"
    ]


def test_plugin_errors_are_one_line(tmp_path):
    cases = {
        "plugins=[no_such_module]": "plugins: cannot import 'no_such_module' (ModuleNotFoundError: "
        "No module named 'no_such_module')",
        'plugins=["os; rm -rf"]': "plugins: a list of module names like my_package.components",
        'plugins=[my_components]\noptim={name: "my_components:nothing"}': (
            "optim.name: module 'my_components' has no function 'nothing'"
        ),
    }
    for overrides, message in cases.items():
        out = cli(tmp_path, "validate", str(VPG), *overrides.split("\n"))
        assert out.returncode == 2
        assert out.stderr.strip().splitlines() == [f"pgtorchrl: error: {VPG}: {message}"]


def test_a_module_callable_is_checked_against_its_section_before_it_is_called(tmp_path):
    """Issue 29, item 8: ``plugins: [os]`` with ``optim: {name: 'os:system'}`` called ``os.system``
    with the parameters (``expected str, bytes or os.PathLike object, not generator``), and
    ``builtins:eval`` as the env was called with the device (``NameError: name 'cpu' is not
    defined``): neither message named the section. A component must be a class of its kind or a
    function taking the section's wiring; one that fails when built names its section too."""
    cases = {
        ("plugins=[os]", "optim={name: 'os:system'}"): (
            "optim.name: 'os:system' is a built-in function, not a component: write a class or a function "
            "(params, *, fields...)"
        ),
        ("plugins=[builtins]", "env={name: 'builtins:eval'}"): (
            "env.name: 'builtins:eval' is a built-in function, not a component: write a class or a function "
            "(device, *, fields...)"
        ),
        ("plugins=[my_components]", "optim={name: 'my_components:no_wiring'}"): (
            "optim.name: 'my_components:no_wiring' cannot be called as optim(params, *, fields...): "
            "too many positional arguments"
        ),
        ("plugins=[my_components]", "optim={name: 'my_components:NotAnOptimizer'}"): (
            "optim.name: 'my_components:NotAnOptimizer' is a class that does not derive from torch's Optimizer, "
            "which every optim component does"
        ),
    }
    for overrides, message in cases.items():
        out = cli(tmp_path, "validate", str(VPG), *overrides)
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip().splitlines() == [f"pgtorchrl: error: {VPG}: {message}"]
    out = cli(tmp_path, "validate", str(VPG), "plugins=[my_components]", "actor={name: 'my_components:broken_actor'}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: actor: 'my_components:broken_actor' failed: RuntimeError: no actor of width 8"
    ]


def test_every_registered_component_meets_the_contract_a_plugin_is_held_to():
    """The wiring and base class each registry declares are those the pipeline calls its own
    components with: a declaration that drifted would refuse every correct plugin of its kind."""
    from pgtorchrl.components import REGISTRIES, TRANSFORMS

    registries = {id(r): r for r in [*REGISTRIES.values(), TRANSFORMS]}.values()
    problems = {
        f"{r.kind} {e.name}": r.factory_problem(e.factory) for r in registries for e in r.entries() if ":" not in e.name
    }
    assert len(problems) > 20
    assert {k: v for k, v in problems.items() if v} == {}

"""Where a training process's peak RSS goes before it trains: each line is a fresh Python process
that imports the modules named (cumulatively) and prints its peak RSS, so the differences are what
each import adds. Issue 30 asks for pgtorchrl's PPO process to need no more memory than SB3's;
this says which part of the gap is pgtorchrl's own and which its dependencies' import side effects:

- TorchRL's ``torchrl.envs`` imports ``torchrl.data``, whose Ray replay buffer imports ``ray``
  whenever it is installed (the ``.[ray]`` extra), Ray or not in the spec;
- tensordict's ``TensorDict.from_any`` (called when a TensorDictModule writes its output) imports
  ``pandas`` whenever it is installed (MLflow, a dependency, installs it) to test for a DataFrame.

    python benchmarks/rss_imports.py
"""

from __future__ import annotations

import subprocess
import sys

STEPS = [
    ("python", [], []),
    ("torch", ["torch"], []),
    ("+ gymnasium, mujoco", ["torch", "gymnasium", "mujoco"], []),
    ("+ tensordict", ["torch", "gymnasium", "mujoco", "tensordict"], []),
    ("+ torchrl.envs, ray blocked", ["torch", "gymnasium", "mujoco", "tensordict", "torchrl.envs"], ["ray"]),
    ("+ torchrl.envs (imports ray)", ["torch", "gymnasium", "mujoco", "tensordict", "torchrl.envs"], []),
    ("+ pandas (tensordict's from_any)", ["torch", "gymnasium", "mujoco", "tensordict", "torchrl.envs", "pandas"], []),
    (
        "+ pgtorchrl.pipeline.build",
        ["torch", "gymnasium", "mujoco", "torchrl.envs", "pandas", "pgtorchrl.pipeline.build"],
        [],
    ),
    ("SB3: torch, gymnasium, mujoco, stable_baselines3", ["torch", "gymnasium", "mujoco", "stable_baselines3"], []),
]

CHILD = """
import importlib, resource, sys
for name in sys.argv[2].split(",") if sys.argv[2] else []:
    sys.modules[name] = None  # blocked: importing it raises ImportError, as if not installed
for name in sys.argv[1].split(",") if sys.argv[1] else []:
    importlib.import_module(name)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_rss_mb(modules: list[str], blocked: list[str]) -> int | None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(modules), ",".join(blocked)], capture_output=True, text=True
    )
    return int(proc.stdout.split()[-1]) if proc.returncode == 0 and proc.stdout.strip() else None


def main() -> int:
    print("| imported | peak RSS MB |")
    print("|---|---|")
    for label, modules, blocked in STEPS:
        mb = peak_rss_mb(modules, blocked)
        print(f"| {label} | {'not installed' if mb is None else mb} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

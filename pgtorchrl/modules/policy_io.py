"""What a trained policy reads and writes outside TorchRL: named numpy arrays, one row per env.

A deployed policy (its MLflow Model, its REST endpoint, its ONNX file) takes the observations an
env's TensorDict holds, batched over rows, and answers with the action in the form the gymnasium
env takes it: an index for a ``Discrete`` action (TorchRL's ``OneHot``), one index per dimension
for ``MultiDiscrete`` (``MultiOneHot``), the vector itself otherwise. :func:`policy_io` derives all
of it from the env's specs and the module's ``in_keys``: the one description the MLflow Model's
signature, its input checks and the exporters share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchrl.data import MultiOneHot, OneHot

from pgtorchrl.modules.recurrent import IS_INIT, is_recurrent, memory_specs

__all__ = ["ArraySpec", "PolicyIO", "policy_io", "array_name", "example_rows"]


@dataclass(frozen=True)
class ArraySpec:
    """One named array of a policy's inputs or outputs: ``shape`` is one row's (no batch)."""

    name: str
    key: str | tuple[str, ...]
    dtype: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        """``observation: float32 [-1, 4]`` (``-1``: the batch of rows)."""
        return f"{self.name}: {self.dtype} [{', '.join(map(str, (-1, *self.shape)))}]"


@dataclass(frozen=True)
class PolicyIO:
    """A policy's inputs (observations, an action mask) and its action, as arrays; a recurrent
    policy's ``memory`` too: ``is_init`` (true at an episode's first step) and its hidden states,
    which a step reads and whose next values it writes (``next_`` + the state's name)."""

    inputs: tuple[ArraySpec, ...]
    action: ArraySpec
    action_kind: str  # "index" (Discrete), "indices" (MultiDiscrete) or "vector"
    memory: tuple[ArraySpec, ...] = ()

    @property
    def arrays_in(self) -> tuple[ArraySpec, ...]:
        """Every array one call takes: the inputs, then a recurrent policy's memory."""
        return (*self.inputs, *self.memory)

    @property
    def arrays_out(self) -> tuple[ArraySpec, ...]:
        """Every array one call gives: ``action``, then a recurrent policy's next hidden states
        (``next_recurrent_state_h`` ...: feed them back, with ``is_init`` false, at the next step)."""
        return (self.action, *(ArraySpec(f"next_{s.name}", _next(s.key), s.dtype, s.shape) for s in self.memory[1:]))

    def plain(self) -> dict:
        """This description as plain values: what the MLflow writer (no torch there) receives."""
        return {
            "inputs": [(spec.name, spec.dtype, spec.shape) for spec in self.arrays_in],
            "outputs": [(spec.name, spec.dtype, spec.shape) for spec in self.arrays_out],
        }

    def action_from_td(self, action: torch.Tensor, action_spec) -> torch.Tensor:
        """The actor's ``action`` (one-hot for discrete actions) as the gymnasium env takes it."""
        return action_spec.to_categorical(action) if self.action_kind != "vector" else action


def _next(key: str | tuple[str, ...]) -> tuple[str, ...]:
    """Where a step writes the next value of ``key`` (TorchRL's ``("next", key)``)."""
    return ("next", *key) if isinstance(key, tuple) else ("next", key)


def array_name(key) -> str:
    """A TensorDict key as an array's name: nested keys joined with dots."""
    return ".".join(key) if isinstance(key, tuple) else str(key)


def _numpy_dtype(dtype: torch.dtype) -> str:
    return str(torch.empty((), dtype=dtype).numpy().dtype)


def _row(spec, batch_dims: int):
    return spec[(0,) * batch_dims] if batch_dims else spec


def policy_io(env, module) -> PolicyIO:
    """The arrays ``module`` (an actor, behind its frozen observation transforms or not) reads
    from ``env``'s observations, and its action as ``env`` takes it; a recurrent module's
    ``is_init`` and hidden states as its ``memory``."""
    memory: tuple[ArraySpec, ...] = ()
    if is_recurrent(module):
        states = memory_specs(module)
        memory = (ArraySpec(IS_INIT, IS_INIT, "bool", (1,)),) + tuple(
            ArraySpec(array_name(key), key, "float32", tuple(shape)) for key, shape in states.items()
        )
    dims = len(env.batch_size)
    observed = env.observation_spec
    memory_keys = {spec.key for spec in memory}
    keys = [k for k in module.in_keys if k in observed.keys(True, True) and k not in memory_keys]
    inputs = []
    for key in keys:
        row = _row(observed[key], dims)
        inputs.append(ArraySpec(array_name(key), key, _numpy_dtype(row.dtype), tuple(row.shape)))
    action_row = _row(env.action_spec, dims)
    shape: tuple[int, ...]
    if isinstance(action_row, MultiOneHot):
        kind, dtype, shape = "indices", "int64", (len(action_row.nvec),)
    elif isinstance(action_row, OneHot):
        kind, dtype, shape = "index", "int64", ()
    else:
        kind, dtype, shape = "vector", _numpy_dtype(action_row.dtype), tuple(action_row.shape)
    return PolicyIO(tuple(inputs), ArraySpec("action", "action", dtype, shape), kind, memory)


def example_rows(io: PolicyIO, env, rows: int = 2) -> dict[str, np.ndarray]:
    """``rows`` draws of each input from ``env``'s observation spec (an input example); a
    recurrent policy's memory as at an episode's first step (``is_init`` true, zero states)."""
    dims = len(env.batch_size)
    specs = {spec.name: _row(env.observation_spec[spec.key], dims) for spec in io.inputs}
    example = {name: np.stack([row.rand().cpu().numpy() for _ in range(rows)]) for name, row in specs.items()}
    for spec in io.memory:
        fill = np.ones if spec.key == IS_INIT else np.zeros
        example[spec.name] = fill((rows, *spec.shape), dtype=spec.dtype)
    return example

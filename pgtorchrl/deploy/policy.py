"""A trained policy as a function of numpy arrays: rows of observations in, actions out.

What the MLflow Model's ``predict``, the REST endpoint behind it and the exporters' parity checks
call. It holds the actor behind its frozen observation transforms (the run's normalization), and
checks every request against :func:`~pgtorchrl.modules.policy_io.policy_io` before the actor sees
it: a wrong name, shape or dtype, a NaN or an infinity, an empty batch or one of more than
:data:`MAX_ROWS` rows is one :class:`PolicyInputError` line naming the problem and what is expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.envs import ExplorationType, set_exploration_type

from pgtorchrl.experiments.loading import Files, Loaded, load_files, load_source
from pgtorchrl.modules.policy_io import ArraySpec, PolicyIO, policy_io

__all__ = ["DeployedPolicy", "PolicyInputError", "MAX_ROWS"]

MAX_ROWS = 10_000
"""The most rows one call (one REST request) may hold: a larger batch is refused, not queued."""


class PolicyInputError(ValueError):
    """A request the policy cannot act on: one line, naming the problem and the expected input."""


class DeployedPolicy:
    """A trained actor that acts on numpy arrays (build it with :meth:`load` or :meth:`from_files`)::

        policy = DeployedPolicy.load("models:/cartpole@champion")
        actions = policy(observations)          # [N, 4] float32 -> [N] int64, deterministic
        actions = policy(observations, deterministic=False)  # sampled

    Inputs: one array when the policy reads one observation key, else a mapping from each input's
    name (``policy.io.inputs``) to its array; a pandas DataFrame is read as its values.
    """

    def __init__(self, loaded: Loaded):
        self.actor, self.inputs = loaded.module, loaded.inputs  # the actor; its frozen input transforms or None
        self.module = loaded.stateless_policy.eval()  # a recurrent one's state comes with each call
        self.io: PolicyIO = policy_io(loaded.env, self.module)
        dims = len(loaded.env.batch_size)
        self.action_spec = loaded.env.action_spec[(0,) * dims] if dims else loaded.env.action_spec  # one row's
        self.spec = loaded.spec

    @classmethod
    def load(cls, source: str, tracking_uri: str | None = None) -> "DeployedPolicy":
        """The policy of a run id or an MLflow Model URI (``models:/NAME@ALIAS``), on the CPU."""
        return cls(load_source(source, "actor", tracking_uri, "cpu"))

    @classmethod
    def from_files(cls, files: Files, where: str) -> "DeployedPolicy":
        """The policy of a run's files (an MLflow Model's artifacts), on the CPU."""
        return cls(load_files(files, "actor", where, "cpu"))

    def expected(self) -> str:
        """The inputs this policy takes, e.g. ``observation: float32 [-1, 4]`` (a recurrent one's
        ``is_init`` and hidden states too)."""
        return "; ".join(spec.describe() for spec in self.io.arrays_in)

    def check(self, inputs: Any) -> dict[str, np.ndarray]:
        """``inputs`` as one array per input name, each of its spec's dtype, or a
        :class:`PolicyInputError` saying what is wrong with it."""
        named = self._named(inputs)
        unknown = sorted(set(named) - {spec.name for spec in self.io.arrays_in})
        if unknown:
            raise PolicyInputError(f"unknown input {unknown[0]!r}: expected {self.expected()}")
        missing = [spec.name for spec in self.io.arrays_in if spec.name not in named]
        if missing:  # the names first: a request without its state is told so, whatever its shapes
            raise PolicyInputError(f"missing input {missing[0]!r}: expected {self.expected()}")
        arrays, rows = {}, None
        for spec in self.io.arrays_in:
            array = self._array(spec, named[spec.name])
            if rows is not None and array.shape[0] != rows:
                raise PolicyInputError(f"{spec.name} has {array.shape[0]} rows, the other inputs {rows}")
            rows = array.shape[0]
            arrays[spec.name] = array
        return arrays

    def _named(self, inputs: Any) -> dict[str, Any]:
        if hasattr(inputs, "to_numpy") and hasattr(inputs, "columns"):  # a pandas DataFrame
            inputs = inputs.to_numpy()
        if isinstance(inputs, dict):
            return dict(inputs)
        if len(self.io.arrays_in) != 1:
            count = len(self.io.arrays_in)
            raise PolicyInputError(f"this policy reads {count} inputs: send them by name ({self.expected()})")
        return {self.io.inputs[0].name: inputs}

    def _array(self, spec: ArraySpec, value: Any) -> np.ndarray:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as err:  # ragged nested lists
            raise PolicyInputError(f"{spec.name} is not an array ({err}): expected {spec.describe()}") from None
        if array.dtype.kind not in "biuf":
            raise PolicyInputError(f"{spec.name} has dtype {array.dtype}, not numbers: expected {spec.describe()}")
        if array.ndim == 2 and len(spec.shape) != 1 and array.shape[1:] != spec.shape:
            flat = int(np.prod(spec.shape))
            if array.shape[1] == flat:  # a DataFrame's flattened rows
                array = array.reshape(array.shape[0], *spec.shape)
        if array.ndim >= 1 and array.shape[0] == 0:  # [] or [N=0, ...]
            raise PolicyInputError(f"{spec.name} is an empty batch: send at least one row ({spec.describe()})")
        if array.ndim == len(spec.shape):  # one row without its batch dimension
            array = array[None]
        if array.shape[1:] != spec.shape:
            got = list(array.shape)
            raise PolicyInputError(f"{spec.name} has shape {got}: expected {spec.describe()}")
        if array.shape[0] > MAX_ROWS:
            raise PolicyInputError(f"a batch of {array.shape[0]} rows: at most {MAX_ROWS} rows per call")
        expected = np.dtype(spec.dtype)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise PolicyInputError(f"{spec.name} holds NaN or infinite values: expected finite {spec.describe()}")
        if expected.kind in "biu" and array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
            raise PolicyInputError(f"{spec.name} holds fractions: expected whole numbers, {spec.describe()}")
        array = array.astype(expected, copy=False)
        return array if array.flags.writeable else array.copy()  # torch warns on read-only memory (a DataFrame's)

    def act(self, arrays: dict[str, np.ndarray], deterministic: bool = True) -> Any:
        """The actions for checked inputs (:meth:`check`): the mode (a Gaussian's mean, the most
        probable discrete action) if ``deterministic``, else a draw. A recurrent policy steps each
        row once from the state it was given and answers ``{"action": ..., "next_<state>": ...}``
        (:attr:`~pgtorchrl.modules.policy_io.PolicyIO.arrays_out`)."""
        rows = next(iter(arrays.values())).shape[0]
        td = TensorDict(
            {spec.key: torch.from_numpy(arrays[spec.name]) for spec in self.io.arrays_in}, batch_size=[rows]
        )
        mode = ExplorationType.DETERMINISTIC if deterministic else ExplorationType.RANDOM
        with torch.no_grad(), set_exploration_type(mode):
            out = self.module(td)
        action = self.io.action_from_td(out["action"], self.action_spec).cpu().numpy()
        if not self.io.memory:
            return action
        return {"action": action, **{spec.name: out[spec.key].cpu().numpy() for spec in self.io.arrays_out[1:]}}

    def __call__(self, inputs: Any, deterministic: bool = True) -> Any:
        return self.act(self.check(inputs), deterministic)

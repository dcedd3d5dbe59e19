"""A trained policy as a file that runs without pgtorchrl: ONNX (onnxruntime alone) or a
``torch.export`` program (``torch.export.load``).

Both hold the deterministic policy with its frozen observation normalization: the inputs of
:func:`~pgtorchrl.modules.policy_io.policy_io` (one tensor each, in that order, the batch of rows
first and of any size) and one output, ``action``, as the gymnasium env takes it (the index of a
discrete action, one index per dimension of a multi-discrete one, the vector of a continuous one:
a Gaussian's mean, squashed or clipped as the actor does). A recurrent policy's state is explicit:
inputs ``is_init`` (``[rows, 1]`` bool, true at each episode's first step) and its hidden states
(``recurrent_state_h`` ... ``[rows, layers, hidden]``, zeros to start), outputs their next values
(``next_recurrent_state_h`` ...) after ``action``: feed them back at the next step. A recurrent
policy exports for one row (one env stepped at a time). The actor is traced by
``torch.export`` (TorchRL's modules export in non-strict mode, as TorchRL's export tutorial does),
then converted by PyTorch's ONNX exporter at :data:`OPSET`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import cast

import torch
from tensordict import TensorDict
from torch import nn
from torchrl.envs import ExplorationType, ObservationNorm, set_exploration_type

from pgtorchrl.deploy.policy import DeployedPolicy
from pgtorchrl.record.fast_exit import thread_locked_progress_bars

__all__ = ["OPSET", "FORMATS", "export_policy", "exported_program", "output_names"]

OPSET = 18
"""The ONNX opset of exported files (onnxruntime 1.17 and newer run it)."""

FORMATS = ("onnx", "pt2")


class _Normalize(nn.Module):
    """An ``ObservationNorm`` with its direction decided now: TorchRL's decides at every call from
    a tensor buffer (``if self.standard_normal:``), which ``torch.export`` cannot trace."""

    def __init__(self, norm):
        super().__init__()
        self.register_buffer("loc", norm.loc.detach().clone())
        self.register_buffer("scale", norm.scale.detach().clone())
        self.standard = bool(norm.standard_normal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        loc, scale = cast(torch.Tensor, self.loc), cast(torch.Tensor, self.scale)
        return (x - loc) / scale if self.standard else x * scale + loc


def _normalizers(policy: DeployedPolicy, keys: list[str]) -> nn.ModuleList:
    """One module per input: its frozen normalization, or the identity."""
    found: dict[str, nn.Module] = {}
    for transform in policy.inputs if policy.inputs is not None else ():
        if not isinstance(transform, ObservationNorm) or list(transform.in_keys) != list(transform.out_keys):
            raise ValueError(f"a policy behind {type(transform).__name__} does not export yet (ObservationNorm does)")
        for key in transform.in_keys:
            if str(key) in found:
                raise ValueError(f"a policy with two normalizations of {key} does not export yet")
            found[str(key)] = _Normalize(transform)
    return nn.ModuleList([found.get(key, nn.Identity()) for key in keys])


class _ActionOf(nn.Module):
    """The policy's deterministic action, as the env takes it, from one tensor per input; a
    recurrent policy's next hidden states too (after the action, in :attr:`PolicyIO.memory`'s order)."""

    def __init__(self, policy: DeployedPolicy):
        super().__init__()
        self.actor = policy.actor
        self.keys = [str(spec.key) for spec in policy.io.inputs]  # top-level keys (see _check_exportable)
        self.normalize = _normalizers(policy, self.keys)
        self.memory = [str(spec.key) for spec in policy.io.memory]  # is_init, then the states
        self.kind = policy.io.action_kind
        self.nvec = [int(n) for n in getattr(policy.action_spec, "nvec", [])]

    def forward(self, *inputs: torch.Tensor):
        named = {key: norm(x) for key, norm, x in zip(self.keys, self.normalize, inputs)}
        named.update(zip(self.memory, inputs[len(self.keys) :]))
        # a TensorDict with the rows as its batch: TorchRL's recurrent modules read their step's
        # batch from it (called with keyword tensors, they see a batch of none)
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            outputs = self.actor(TensorDict(named, batch_size=inputs[0].shape[:1]))
        action = outputs["action"]
        # the one-hot action as an index by argmax: the same result as PolicyIO.action_from_td's
        # spec.to_categorical, written as plain tensor ops for the traced graph
        if self.kind == "index":
            action = action.to(torch.int64).argmax(-1)
        elif self.kind == "indices":
            action = torch.stack([part.to(torch.int64).argmax(-1) for part in action.split(self.nvec, -1)], -1)
        return (action, *(outputs["next", key] for key in self.memory[1:])) if self.memory else action


def _examples(policy: DeployedPolicy, rows: int = 2) -> tuple[torch.Tensor, ...]:
    arrays = policy.io.arrays_in
    return tuple(torch.zeros((rows, *spec.shape), dtype=getattr(torch, spec.dtype)) for spec in arrays)


def output_names(policy: DeployedPolicy) -> list[str]:
    """``action``, then a recurrent policy's next states (``next_recurrent_state_h`` ...)."""
    return [spec.name for spec in policy.io.arrays_out]


def _check_exportable(policy: DeployedPolicy) -> None:
    nested = [spec.name for spec in policy.io.inputs if isinstance(spec.key, tuple)]
    if nested:
        raise ValueError(f"a policy reading nested observation keys ({nested[0]}) does not export yet")


def exported_program(policy: DeployedPolicy) -> torch.export.ExportedProgram:
    """The deterministic policy as a ``torch.export`` program, its batch dimension dynamic; a
    recurrent policy's is one row (one env stepped): TorchRL's recurrent modules fix the batch
    they are traced with."""
    _check_exportable(policy)
    recurrent = bool(policy.io.memory)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    inputs = _examples(policy, rows=1 if recurrent else 2)
    if recurrent:
        return torch.export.export(_ActionOf(policy).eval(), inputs, strict=False)
    # traced with gradients enabled: the CNN encoder encodes in chunks without them (a branch on the
    # batch size that a dynamic batch cannot trace); the program's forward is the same either way
    return torch.export.export(
        _ActionOf(policy).eval(), inputs, dynamic_shapes=(tuple({0: batch} for _ in inputs),), strict=False
    )


def export_policy(policy: DeployedPolicy, path: str | Path, format: str) -> Path:
    """Writes ``policy`` to ``path`` as ``format`` (``onnx`` or ``pt2``); returns the path."""
    if format not in FORMATS:
        raise ValueError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    thread_locked_progress_bars()  # torch.fx's interpreter opens one
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch.export's own
        return _write(policy, exported_program(policy), path, format)


def _write(policy: DeployedPolicy, program: torch.export.ExportedProgram, path: Path, format: str) -> Path:
    if format == "pt2":
        torch.export.save(program, str(path))
        return path
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # its notes on torchvision, absent here
    onnx = torch.onnx.export(
        program,
        (),
        input_names=[spec.name for spec in policy.io.arrays_in],
        output_names=output_names(policy),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    if onnx is None:
        raise RuntimeError("PyTorch's ONNX exporter returned no program")
    onnx.save(str(path))
    return path

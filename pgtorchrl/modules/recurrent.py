"""Policies with memory: LSTM and GRU trunks on TorchRL's ``LSTMModule`` / ``GRUModule``.

A recurrent actor or critic is ``encoder -> RNN -> MLP head``: the observation keys' encoders of
:mod:`pgtorchrl.modules.encoders` (one-hot for discrete keys, a CNN for images, the vector as it is),
then TorchRL's ``LSTMModule`` or ``GRUModule``, then the same MLP head as the feed-forward
networks (:mod:`pgtorchrl.modules.models`). This module builds the first two, the *trunk*
(:func:`memory_trunk`), as a ``TensorDictSequential`` writing ``features``.

The TorchRL way, as ``LSTMModule``'s documentation gives it:

- the hidden state is part of the TensorDict: the trunk reads ``recurrent_state_h`` and
  ``recurrent_state_c`` (LSTM) or ``recurrent_state`` (GRU) and writes them under ``"next"``; a
  critic's keys start with ``critic_``, so both networks carry their own state;
- the env is told about them (:func:`add_memory`): TorchRL's ``InitTracker`` writes ``is_init``
  (true at the first step of every episode) and a ``TensorDictPrimer`` puts zero states at every
  reset, so a collector carries them from step to step, and stores, at every step, the state the
  network started that step from;
- collection and evaluation run the net one step at a time (the default mode, which zeroes the
  state where ``is_init``); training runs it over whole sequences under
  ``torchrl.modules.set_recurrent_mode(True)`` (:mod:`pgtorchrl.trainers.trainer`), each
  sequence starting from the state stored at its first step (zero at an episode start: the
  primer wrote it), split where ``is_init`` marks a new episode inside it.

``python_based`` (TorchRL's keyword) runs the cell as a Python loop over time: slower, but a step
computes the same floats in both modes; with ``nn.LSTM`` the sequence pass differs from
step-by-step calls by float32 rounding (about 1e-7 in the log-probabilities,
``tests/test_recurrent.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torch import nn
from torchrl.data import Unbounded
from torchrl.envs import InitTracker, TensorDictPrimer, TransformedEnv
from torchrl.modules import GRUModule, LSTMModule

__all__ = ["MemorySettings", "memory_trunk", "recurrent_modules", "is_recurrent", "memory_specs", "add_memory"]
__all__ += ["CarriedMemory"]

RECURRENT = (LSTMModule, GRUModule)
IS_INIT = "is_init"


@dataclass(frozen=True)
class MemorySettings:
    """One recurrent trunk: the cell (``lstm`` or ``gru``), its size and layers, TorchRL's
    ``python_based`` option, and the prefix of its keys (``""`` for the actor, ``"critic_"``
    for the critic)."""

    cell: Literal["lstm", "gru"]
    hidden_size: int = 64
    num_layers: int = 1
    python_based: bool = False
    prefix: str = ""

    @property
    def state_keys(self) -> list[str]:
        """The hidden-state keys (TorchRL's default names, behind the prefix)."""
        names = ["recurrent_state_h", "recurrent_state_c"] if self.cell == "lstm" else ["recurrent_state"]
        return [self.prefix + name for name in names]

    @property
    def features_key(self) -> str:
        """What the trunk writes (the RNN's output), the head's input."""
        return self.prefix + "features"


def memory_trunk(
    settings: MemorySettings, encoder: nn.Module | None, n_in: int, in_keys: list[NestedKey]
) -> TensorDictSequential:
    """``encoder`` (``None``: the observation as it is) then the RNN, as TensorDict modules:
    reads ``in_keys``, the state keys and ``is_init``; writes ``features`` and the next state.

    >>> trunk = memory_trunk(MemorySettings("gru", hidden_size=8), None, 3, ["observation"])
    >>> trunk.in_keys, trunk.out_keys
    (['observation', 'recurrent_state', 'is_init'], ['features', ('next', 'recurrent_state')])
    """
    stages: list[TensorDictModuleBase] = []
    rnn_input: NestedKey = in_keys[0]
    if encoder is not None or len(in_keys) > 1:  # one float vector for the RNN
        rnn_input = settings.prefix + "embed"
        stages.append(TensorDictModule(encoder or _Concat(), in_keys=list(in_keys), out_keys=[rnn_input]))
    state = settings.state_keys
    cls = LSTMModule if settings.cell == "lstm" else GRUModule
    rnn = cls(
        input_size=n_in,
        hidden_size=settings.hidden_size,
        num_layers=settings.num_layers,
        python_based=settings.python_based,
        in_keys=[rnn_input, *state],
        out_keys=[settings.features_key, *(("next", key) for key in state)],
    )
    stages.append(rnn)
    return TensorDictSequential(*stages)


class _Concat(nn.Module):
    """Several flat float observation keys as one vector."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, -1)


def recurrent_modules(*modules: nn.Module | None) -> list[nn.Module]:
    """The ``LSTMModule``s and ``GRUModule``s inside ``modules`` (``None`` entries skipped)."""
    return [m for module in modules if module is not None for m in module.modules() if isinstance(m, RECURRENT)]


def is_recurrent(*modules: nn.Module | None) -> bool:
    """Whether any of ``modules`` has memory (an ``LSTMModule`` or ``GRUModule`` inside)."""
    return bool(recurrent_modules(*modules))


def memory_specs(*modules: nn.Module | None) -> dict[NestedKey, list[int]]:
    """Every hidden-state key the recurrent parts of ``modules`` read, with its shape per env
    (``[layers, hidden]``): what :func:`add_memory` primes. Keys and lists only, so it
    travels to remote workers."""
    specs: dict[NestedKey, list[int]] = {}
    for m in recurrent_modules(*modules):
        rnn: nn.RNNBase = m.lstm if isinstance(m, LSTMModule) else m.gru  # type: ignore[assignment]
        shape = [rnn.num_layers * (2 if rnn.bidirectional else 1), rnn.hidden_size]
        for key in list(m.in_keys)[1:]:  # type: ignore[arg-type]
            if key != IS_INIT:
                specs[key] = shape
    return specs


def add_memory(env, memory: dict[NestedKey, list[int]]):
    """``env`` with what recurrent networks need of it (TorchRL's documented setup): an
    ``InitTracker`` writing ``is_init`` and a ``TensorDictPrimer`` of zero hidden states for the
    keys of ``memory`` (:func:`memory_specs`) it does not have yet. Nothing for an empty
    ``memory``; adding the same memory twice changes nothing."""
    if not memory:
        return env
    if not isinstance(env, TransformedEnv):
        raise ValueError(
            f"a recurrent actor or critic needs a TorchRL TransformedEnv (env 'gym' or 'atari'), got "
            f"{type(env).__name__}: its hidden state travels through the env's transforms"
        )
    if not any(isinstance(t, InitTracker) for t in env.transform):
        env.append_transform(InitTracker())
    known = set(env.observation_spec.keys(True, True))
    missing = {key: Unbounded(shape=tuple(shape)) for key, shape in memory.items() if key not in known}
    if missing:
        env.append_transform(TensorDictPrimer(missing, expand_specs=True))
    return env


class CarriedMemory(TensorDictModuleBase):
    """A recurrent policy for step-by-step use outside a TorchRL env (a plain gymnasium loop, a
    server): it keeps the hidden state between calls itself. Each call reads the observation
    keys of one step (a TensorDict of any batch size, one entry per env), writes the policy's
    outputs, and keeps the next state for the next call. :meth:`reset` starts a new episode:
    the next call starts from zero states with ``is_init`` true (call it after every episode's
    end; a new wrapper starts reset). What :func:`pgtorchrl.experiments.loading.load_actor` returns for a
    recurrent actor::

        policy = load_actor(run_id)
        obs, _ = env.reset(seed=0)
        while True:
            td = policy(TensorDict(observation=torch.as_tensor(obs)))
            obs, reward, terminated, truncated, _ = env.step(td["action"].argmax(-1).item())
            if terminated or truncated:
                policy.reset()
                obs, _ = env.reset()
    """

    def __init__(self, policy: TensorDictModuleBase):
        super().__init__()
        self.policy = policy
        self.memory = memory_specs(policy)
        self.in_keys = [k for k in policy.in_keys if k not in self.memory and k != IS_INIT]
        self.out_keys = list(policy.out_keys)
        self._state: dict | None = None

    def reset(self) -> None:
        """The next call is the first step of an episode (zero hidden states)."""
        self._state = None

    def forward(self, tensordict):
        td = tensordict.copy()
        start = self._state is None
        for key, shape in self.memory.items():
            zeros = torch.zeros(*td.batch_size, *shape, device=td.device)
            td.set(key, zeros if self._state is None else self._state[key])
        td.set(IS_INIT, torch.full((*td.batch_size, 1), start, dtype=torch.bool, device=td.device))
        out = self.policy(td)
        self._state = {key: out.get(("next", key)) for key in self.memory}
        return out

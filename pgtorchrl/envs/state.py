"""An env's dynamic state as plain tensors and numbers, and back: gymnasium envs (each wrapper's
and the base env's variables, ``np_random``, MuJoCo's ``qpos``/``qvel``, an Atari game's
emulator state), gymnasium vector envs
under TorchRL's ``GymWrapper``, and pgtorchrl's torch-native envs (their own tensors). What a
checkpoint (:mod:`pgtorchrl.trainers.checkpoint`) holds of the envs; it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import torch

from pgtorchrl.envs.native import TorchNativeEnv

__all__ = ["CheckpointError", "gym_env_state", "load_gym_env_state", "env_state", "load_env_state", "vector_env"]


class CheckpointError(ValueError):
    """A checkpoint that does not fit the pipeline it is restored into."""


# -- plain Python objects (gymnasium envs and wrappers) ---------------------------------------------
def _plain_vars(obj) -> dict[str, Any]:
    """An object's numeric attributes: numbers, booleans, ``None`` and numeric numpy arrays (as
    tensors). That is the whole dynamic state of gymnasium's classic-control and toy-text envs
    and wrappers (``state``, ``s``, ``steps_beyond_terminated``, ``_elapsed_steps``, ...); objects
    and arrays of strings or bytes (FrozenLake's map ``desc``: fixed at construction) are skipped."""
    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if value is None or isinstance(value, (bool, int, float)):
            out[name] = value
        elif isinstance(value, np.generic):
            out[name] = value.item()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biufc":  # bool, int, uint, float, complex
            out[name] = torch.from_numpy(value.copy())
        elif _numeric_arrays(value):  # a frame buffer or stack (Atari's wrappers)
            out[name] = {"arrays": [torch.from_numpy(a.copy()) for a in value]}
    return out


def _numeric_arrays(value) -> bool:
    """Whether ``value`` is a list or deque of numeric numpy arrays (gymnasium's
    ``AtariPreprocessing.obs_buffer``, ``FrameStackObservation.obs_queue``)."""
    return (
        isinstance(value, (list, collections.deque))
        and len(value) > 0
        and all(isinstance(a, np.ndarray) and a.dtype.kind in "biufc" for a in value)
    )


def _load_plain_vars(obj, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, dict):  # a sequence of arrays, restored into the object's own container
            old = getattr(obj, name)
            arrays = [a.numpy().copy() for a in value["arrays"]]
            if isinstance(old, collections.deque):
                old.clear()
                old.extend(arrays)
            else:
                old[:] = arrays
            continue
        if isinstance(value, torch.Tensor):
            old = getattr(obj, name, None)
            value = value.numpy().copy()
            if isinstance(old, np.ndarray) and old.shape == value.shape:
                old[...] = value  # in place: other objects may hold this buffer
                continue
        setattr(obj, name, value)


# -- the state objects some base envs keep beside their own variables ---------------------------------
INNER_STATE = {"minatar.gym": ("game", "game.env")}
"""Per base-env module, the attribute paths of the plain objects holding the env's dynamic state
beyond its own variables: MinAtar's ``Environment`` (its sticky-action state and ``RandomState``)
and the game itself (positions, maps, lists of entities, its ``RandomState``)."""


def _plain_value(value) -> tuple[bool, Any]:
    """``(True, v)`` with ``v`` a ``torch.load(weights_only=True)``-safe form of ``value`` (numbers,
    strings, numeric arrays as tensors, lists and tuples of those, a numpy ``RandomState`` as its
    state tagged ``__random_state__``), or ``(False, None)`` for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    if isinstance(value, np.generic):
        return True, value.item()
    if isinstance(value, np.ndarray):
        return (True, torch.from_numpy(value.copy())) if value.dtype.kind in "biufc" else (False, None)
    if isinstance(value, np.random.RandomState):
        name, keys, pos, has_gauss, cached = value.get_state(legacy=True)  # the 5-tuple
        return True, {"__random_state__": [name, torch.from_numpy(np.asarray(keys, np.int64)), pos, has_gauss, cached]}
    if isinstance(value, (list, tuple)):
        parts = [_plain_value(v) for v in value]
        if all(ok for ok, _ in parts):
            return True, [v for _, v in parts] if isinstance(value, list) else tuple(v for _, v in parts)
    return False, None


def _restored_value(old, value):
    """The live form of a :func:`_plain_value` (a ``RandomState`` restored in place, as other objects share it)."""
    if isinstance(value, dict) and "__random_state__" in value:
        name, keys, pos, has_gauss, cached = value["__random_state__"]
        target = old if isinstance(old, np.random.RandomState) else np.random.RandomState()
        target.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        return target
    if isinstance(value, torch.Tensor):
        return value.numpy().copy()
    if isinstance(value, (list, tuple)):
        olds = old if isinstance(old, (list, tuple)) and len(old) == len(value) else [None] * len(value)
        restored = [_restored_value(o, v) for o, v in zip(olds, value)]
        return restored if isinstance(value, list) else tuple(restored)
    return value


def _inner_objects(base) -> dict[str, Any]:
    paths = INNER_STATE.get(type(base).__module__, ())
    found = {}
    for path in paths:
        obj = base
        for name in path.split("."):
            obj = getattr(obj, name, None)
        if obj is not None:
            found[path] = obj
    return found


def gym_env_state(env) -> dict[str, Any]:
    """One gymnasium env's state: each wrapper's and the base env's plain variables, its
    ``np_random``, for MuJoCo ``qpos``/``qvel`` and, for the envs of :data:`INNER_STATE`, the
    plain variables of their state objects."""
    layers, layer = [], env
    while True:
        layers.append(_plain_vars(layer))
        inner = getattr(layer, "env", None)
        if inner is None or layer is layer.unwrapped:
            break
        layer = inner
    base = env.unwrapped
    state: dict[str, Any] = {"layers": layers}
    rng = getattr(base, "_np_random", None)
    if rng is not None:
        state["np_random"] = rng.bit_generator.state
    if hasattr(base, "data") and hasattr(base, "set_state"):  # MuJoCo: the simulator's state
        state["qpos"] = torch.from_numpy(base.data.qpos.copy())
        state["qvel"] = torch.from_numpy(base.data.qvel.copy())
    seen: dict[int, str] = {}  # a RandomState by id: where it was saved first
    inner = {path: _inner_vars(obj, path, seen) for path, obj in _inner_objects(base).items()}
    if inner:
        state["inner"] = inner
    ale = getattr(base, "ale", None)
    if ale is not None and hasattr(ale, "cloneState"):  # an Atari game: the emulator, its RNG included
        state["ale"] = torch.frombuffer(bytearray(ale.cloneState(include_rng=True).serialize()), dtype=torch.uint8)
    return state


def _inner_vars(obj, path: str, seen: dict[int, str]) -> dict[str, Any]:
    """``obj``'s plain variables; a ``RandomState`` that an earlier object holds too (MinAtar's
    game and its ``Environment`` share one once seeded) is saved as ``{"__same_as__": where}``,
    so that a restored env shares it again rather than drawing two streams from two copies."""
    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.random.RandomState):
            if id(value) in seen:
                out[name] = {"__same_as__": seen[id(value)]}
                continue
            seen[id(value)] = f"{path}:{name}"
        ok, plain = _plain_value(value)
        if ok:
            out[name] = plain
    return out


def load_gym_env_state(env, state: dict[str, Any]) -> None:
    """Restores what :func:`gym_env_state` returned into an env made from the same id."""
    layer = env
    for values in state["layers"]:
        _load_plain_vars(layer, values)
        layer = getattr(layer, "env", layer)
    base = env.unwrapped
    if "np_random" in state:
        bit_generator = getattr(np.random, state["np_random"]["bit_generator"])()
        bit_generator.state = state["np_random"]
        base._np_random = np.random.Generator(bit_generator)
    if "qpos" in state:
        base.set_state(state["qpos"].numpy(), state["qvel"].numpy())
    if "ale" in state:
        import ale_py

        base.ale.restoreState(ale_py.ALEState(state["ale"].numpy().tobytes()))
    objects = _inner_objects(base)
    for path, values in state.get("inner", {}).items():
        if path not in objects:
            raise CheckpointError(f"the checkpoint holds the state of {path!r}, which this env does not have")
        for name, value in values.items():
            if isinstance(value, dict) and "__same_as__" in value:  # shared with an object restored before
                first_path, first_name = value["__same_as__"].rsplit(":", 1)
                setattr(objects[path], name, getattr(objects[first_path], first_name))
            else:
                setattr(objects[path], name, _restored_value(getattr(objects[path], name, None), value))


def vector_env(env):
    """The gymnasium vector env under a TorchRL ``GymWrapper`` (possibly transformed), else ``None``."""
    base = getattr(env, "base_env", env)
    inner = getattr(base, "_env", None)
    return inner if inner is not None and hasattr(inner, "envs") else None


# -- envs and collectors -----------------------------------------------------------------------------
def env_state(env) -> dict[str, Any] | None:
    """A batched env's state, or ``None`` for an env kind that cannot be captured."""
    if isinstance(env, TorchNativeEnv):
        return {"tensors": env.state_tensors()}
    vector = vector_env(env)
    if vector is not None:
        return {"vector": _plain_vars(vector), "envs": [gym_env_state(e) for e in vector.envs]}
    return None


def load_env_state(env, state: dict[str, Any] | None) -> None:
    """Restores in ``env`` a state that :func:`env_state` saved (``None``: nothing to restore)."""
    if state is None:
        return
    if "tensors" in state:
        env.load_state_tensors(state["tensors"])
        return
    vector = vector_env(env)
    if vector is None or len(vector.envs) != len(state["envs"]):
        raise CheckpointError("the checkpoint's env state does not match this spec's env")
    _load_plain_vars(vector, state["vector"])
    for sub_env, sub_state in zip(vector.envs, state["envs"]):
        load_gym_env_state(sub_env, sub_state)

"""Checks, before any frame is collected, that every key a module reads is written upstream."""

from __future__ import annotations

from typing import Iterable, Sequence

from tensordict.utils import NestedKey

__all__ = ["KeyFlowError", "env_keys", "check_key_flow"]


class KeyFlowError(ValueError):
    """A module reads a tensordict key that nothing before it writes."""


def _norm(key: NestedKey) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(key)


def _show(key: tuple[str, ...]) -> str:
    return key[0] if len(key) == 1 else repr(key)


def env_keys(env) -> set[tuple[str, ...]]:
    """The keys a TorchRL env puts in a collected batch: observations, action, and under
    ``"next"`` the next observations, reward and done flags."""
    observed = {_norm(k) for k in env.observation_spec.keys(True, True)}
    done = {_norm(k) for k in env.full_done_spec.keys(True, True)}
    reward = {_norm(k) for k in env.full_reward_spec.keys(True, True)}
    keys = observed | done | {_norm(env.action_key)}
    keys |= {("next", *k) for k in observed | done | reward}
    return keys


def check_key_flow(
    available: Iterable[NestedKey], stages: Sequence[tuple[str, Iterable[NestedKey], Iterable[NestedKey]]]
) -> None:
    """Walks ``(name, in_keys, out_keys)`` stages in order, as TensorDict modules run.

    >>> check_key_flow({"observation"}, [("actor", ["observation"], ["action"]), ("loss", ["advantage"], [])])
    Traceback (most recent call last):
    ...
    pgtorchrl.pipeline.keyflow.KeyFlowError: loss reads advantage, which no upstream module writes (available: action, observation)
    """  # noqa: E501 (a doctest's exact output)
    have = {_norm(k) for k in available}
    for name, in_keys, out_keys in stages:
        missing = [k for k in map(_norm, in_keys) if k not in have]
        if missing:
            listed = ", ".join(sorted(map(_show, have)))
            raise KeyFlowError(
                f"{name} reads {', '.join(map(_show, missing))}, which no upstream module writes (available: {listed})"
            )
        have |= {_norm(k) for k in out_keys}

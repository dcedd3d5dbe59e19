"""Load a trained actor or critic back from an MLflow run, as TensorDict modules."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Callable

import torch
import yaml
from tensordict.nn import TensorDictSequential

from pgtorchrl.envs.gym import (
    TRANSFORMS_ARTIFACT,
    freeze_transforms,
    load_transforms_state,
    observation_transforms,
    user_transforms,
)
from pgtorchrl.modules.recurrent import CarriedMemory, add_memory, is_recurrent, memory_specs
from pgtorchrl.pipeline.build import build_policy, eval_env
from pgtorchrl.pipeline.parse import parse_spec
from pgtorchrl.pipeline.schema import Spec
from pgtorchrl.record.tracking import mlflow_client
from pgtorchrl.trainers.checkpoint import CHECKPOINT_DIR, from_bytes
from pgtorchrl.trainers.evaluation import evaluate
from pgtorchrl.trainers.trainer import LoopState

__all__ = [
    "load_actor",
    "load_critic",
    "load_run_spec",
    "evaluate_run",
    "latest_checkpoint",
    "resumable_run",
    "MissingArtifactError",
]


class MissingArtifactError(LookupError):
    """A run lacks an artifact loading it needs: the message says which, and what to do."""

    def __str__(self) -> str:
        return str(self.args[0])


def _missing(run_id: str, status: str, artifact: str) -> str:
    """What a run that lacks ``artifact`` is, and what to do instead."""
    if artifact == "spec/resolved.yaml":
        return (
            f"run {run_id} ({status}) has no {artifact}: its artifacts were deleted or it is not a pgtorchrl "
            f"run, so its policy cannot be rebuilt"
        )
    if status in ("KILLED", "FAILED", "RUNNING"):
        return (
            f"run {run_id} ({status}) has no {artifact} yet: it stopped before its end; `pgtorchrl resume "
            f"{run_id}` finishes it (or load one of its checkpoints)"
        )
    return f"run {run_id} ({status}) has no {artifact}: it was trained with tracking.log_models: false; train again"


def _download(run_id: str, artifact: str, tracking_uri: str | None, dst: str) -> Path:
    """``artifact`` of run ``run_id``, downloaded into ``dst``; a :class:`MissingArtifactError` if
    the run has no such artifact (MLflow would only say that the download failed)."""
    client = mlflow_client(tracking_uri)
    folder = str(Path(artifact).parent) if str(Path(artifact).parent) != "." else None
    if artifact not in {a.path for a in client.list_artifacts(run_id, folder)}:
        raise MissingArtifactError(_missing(run_id, client.get_run(run_id).info.status, artifact))
    return Path(client.download_artifacts(run_id, artifact, dst))


def load_run_spec(run_id: str, tracking_uri: str | None = None, device: str | None = None) -> Spec:
    """The resolved spec a run was trained with (on ``device`` instead of its own, if given:
    a run trained on a GPU loads on a CPU-only machine with ``device="cpu"``)."""

    with tempfile.TemporaryDirectory() as tmp:
        raw = yaml.safe_load(_download(run_id, "spec/resolved.yaml", tracking_uri, tmp).read_text())
    if device is not None:
        raw["device"] = device
    return parse_spec(raw, f"run {run_id}: spec/resolved.yaml")


def _load(spec: Spec, run_id: str, which: str, tracking_uri: str | None, eval_env=None):
    """``which`` module of run ``run_id``, rebuilt from ``spec`` (the run's, as loaded) with its
    trained weights, and the frozen observation transforms it was trained behind (or ``None``).
    ``eval_env``, if given, gets the run's env-transform statistics too (frozen)."""
    env, actor, critic = build_policy(spec)
    module = actor if which == "actor" else critic
    if module is None:
        raise ValueError(f"run {run_id} has no critic (its spec has no `critic:` section)")
    with tempfile.TemporaryDirectory() as tmp:
        state = torch.load(
            _download(run_id, f"model/{which}.pt", tracking_uri, tmp), weights_only=True, map_location=spec.device
        )
        if user_transforms(env):
            path = _download(run_id, TRANSFORMS_ARTIFACT, tracking_uri, tmp)
            transforms = torch.load(path, weights_only=True, map_location=spec.device)
            for target in (env, eval_env) if eval_env is not None else (env,):
                load_transforms_state(target, transforms)
                freeze_transforms(target)
    module.load_state_dict(state)
    inputs = observation_transforms(env)
    env.close()
    return module, inputs


def _with_inputs(module, transforms):
    """``module`` reading raw observations: behind the frozen observation transforms it was
    trained with; a recurrent one carrying its hidden state between calls (:class:`CarriedMemory`)."""
    if transforms is not None:
        module = TensorDictSequential(transforms, module)
    return CarriedMemory(module) if is_recurrent(module) else module


def load_actor(run_id: str, tracking_uri: str | None = None, device: str | None = None):
    """The trained ``ProbabilisticActor`` of an MLflow run (rebuilt from the run's spec, on
    ``device`` if given, else on the run's own)::

        actor = load_actor(run_id)
        td = actor(env.reset())  # writes action and action_log_prob

    A run whose env normalizes (or clips) observations with TorchRL transforms returns
    ``TensorDictSequential(transforms, actor)``: those transforms, frozen at the run's final
    statistics, then the actor, so it acts on raw observations exactly as in training. A
    recurrent actor (``lstm``, ``gru``) comes as a
    :class:`~pgtorchrl.modules.recurrent.CarriedMemory`: it keeps its hidden state from call to
    call (one call per step); ``reset()`` it at every episode's end.
    """
    return _with_inputs(*_load(load_run_spec(run_id, tracking_uri, device), run_id, "actor", tracking_uri))


def load_critic(run_id: str, tracking_uri: str | None = None, device: str | None = None):
    """The trained critic (``ValueOperator`` writing ``state_value``) of an MLflow run (behind
    the run's frozen observation transforms, as :func:`load_actor`)."""
    return _with_inputs(*_load(load_run_spec(run_id, tracking_uri, device), run_id, "critic", tracking_uri))


def evaluate_run(
    run_id: str, episodes: int = 10, tracking_uri: str | None = None, device: str | None = None
) -> torch.Tensor:
    """The returns of ``episodes`` deterministic episodes of a run's trained actor (one per env
    of a fresh env built from the run's spec, seeded with the spec's seed), on ``device`` if
    given, else on the run's own."""

    spec = load_run_spec(run_id, tracking_uri, device)  # read once: the env and the actor both need it
    env = eval_env(spec, episodes)
    actor, _ = _load(spec, run_id, "actor", tracking_uri, eval_env=env)  # the env applies the run's transforms
    return evaluate(add_actor_memory(env, actor), actor)


def rendering_run(run_id: str, tracking_uri: str | None = None):
    """One env of a run's spec that renders (``render_mode: rgb_array``, the run's env
    transforms and their statistics) and the run's trained actor acting in it (on CPU): what
    ``pgtorchrl eval --video`` records. Envs without ``make_kwargs`` (the torch-native ones)
    do not render."""
    spec = load_run_spec(run_id, tracking_uri, "cpu")
    make_kwargs = getattr(spec.env, "make_kwargs", None)
    if make_kwargs is None:
        raise ValueError(
            f"--video renders gymnasium envs (env.name: gym, gym_native or atari); run {run_id} used {spec.env.name!r}"
        )
    env_section = spec.env.model_copy(update={"make_kwargs": {**make_kwargs, "render_mode": "rgb_array"}})
    spec = spec.model_copy(update={"env": env_section})
    env = eval_env(spec, 1)
    actor, _ = _load(spec, run_id, "actor", tracking_uri, eval_env=env)  # the env applies the run's transforms
    return add_actor_memory(env, actor), actor


def add_actor_memory(env, actor):
    """``env`` primed for a recurrent ``actor``'s hidden states (after the run's transforms were
    loaded into it: the memory transforms hold no statistics)."""
    return add_memory(env, memory_specs(actor))


CheckpointCheck = Callable[[dict], "str | None"]
"""Why a loaded checkpoint does not fit what it is restored into (``None``: it fits)."""


def checkpoint_misfit(spec: Spec) -> CheckpointCheck:
    """The check that a checkpoint fits ``spec``: every entry a resume reads is there (the loop's
    progress among them), and the actor's and critic's weights have the shapes and dtypes of the
    networks ``spec`` builds. A checkpoint that unpickles but fails this is as unusable as a
    damaged one."""
    _, actor, critic = build_policy(spec)
    networks = {"actor": actor.state_dict(), **({"critic": critic.state_dict()} if critic is not None else {})}
    needed = [
        "progress",
        "actor",
        "actor_optim",
        "rng",
        "env",
        "collector",
        *(["critic", "critic_optim"] * bool(critic)),
    ]
    progress_fields = {f.name for f in fields(LoopState)} - {"stopped"}  # older checkpoints lack ``stopped``

    def misfit(checkpoint: dict) -> str | None:
        missing = [key for key in needed if key not in checkpoint]
        if missing:
            return f"it lacks {', '.join(missing)}"
        progress = checkpoint["progress"]
        if not isinstance(progress, dict) or not progress_fields <= progress.keys():
            return f"its progress lacks {', '.join(sorted(progress_fields - set(progress or {})))}"
        for name, expected in networks.items():
            saved = checkpoint[name]
            if not isinstance(saved, dict) or saved.keys() != expected.keys():
                return f"its {name}'s parameters are not this spec's {name}'s"
            for key, tensor in expected.items():
                if not isinstance(tensor, torch.Tensor):  # an extra state entry: nothing to compare
                    continue
                got = saved[key]
                if not isinstance(got, torch.Tensor) or got.shape != tensor.shape or got.dtype != tensor.dtype:
                    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                    return f"its {name}'s {key} is {shape}, this spec's is {tuple(tensor.shape)} ({tensor.dtype})"
        return None

    return misfit


def latest_checkpoint(run_id: str, tracking_uri: str | None = None, misfit: CheckpointCheck | None = None) -> dict:
    """The newest checkpoint of a run that loads (``torch.load(weights_only=True)``) and fits
    (``misfit``, e.g. :func:`checkpoint_misfit` of the run's spec): one that does not (cut short by
    a killed process, damaged, not a pgtorchrl checkpoint, or not this spec's) is skipped with a
    one-line warning naming it, for the one before it."""

    client = mlflow_client(tracking_uri)
    paths = sorted(
        (f.path for f in client.list_artifacts(run_id, CHECKPOINT_DIR) if f.path.endswith(".pt")), reverse=True
    )
    if not paths:
        raise LookupError(f"run {run_id} has no checkpoint (tracking.checkpoint_every_frames logs them)")
    misfits: list[str] = []
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(client.download_artifacts(run_id, path, tmp)).read_bytes()
        try:
            checkpoint = from_bytes(data)
        except Exception as err:  # noqa: BLE001 (any damage at all: torn, random bytes, a pickle weights_only refuses)
            first = (str(err).strip().splitlines() or [""])[0][:160]
            print(
                f"pgtorchrl: warning: run {run_id}: {path} does not load ({type(err).__name__}: {first}); "
                f"trying the one before it",
                file=sys.stderr,
            )
            continue
        why = misfit(checkpoint) if misfit is not None else None
        if why is None:
            return checkpoint
        misfits.append(why)
        print(
            f"pgtorchrl: warning: run {run_id}: {path} does not fit ({why}); trying the one before it", file=sys.stderr
        )
    status = client.get_run(run_id).info.status
    if misfits:
        raise LookupError(
            f"run {run_id} ({status}): the run's spec no longer matches its checkpoints: none of its {len(paths)} "
            f"fits spec/resolved.yaml (the newest that loads: {misfits[0]}); nothing was resumed"
        )
    raise LookupError(f"run {run_id} ({status}): none of its {len(paths)} checkpoints loads; nothing was resumed")


def resumable_run(
    run_id: str, tracking_uri: str | None = None, checkpoint_file: str | Path | None = None
) -> tuple[Spec, dict]:
    """The spec and newest checkpoint of an unfinished run (RUNNING after a crash, KILLED or
    FAILED); ``checkpoint_file``: a local checkpoint to continue from instead (the one a run
    saves under ``mlruns/recovered/`` when its tracking fails mid-run)."""

    status = mlflow_client(tracking_uri).get_run(run_id).info.status
    if status == "FINISHED":
        raise ValueError(f"run {run_id} is FINISHED: nothing to resume (train a new run instead)")
    spec = load_run_spec(run_id, tracking_uri)
    misfit = checkpoint_misfit(spec)
    if checkpoint_file is None:
        return spec, latest_checkpoint(run_id, tracking_uri, misfit)
    try:
        checkpoint = from_bytes(Path(checkpoint_file).read_bytes())
    except Exception as err:  # noqa: BLE001 (missing, damaged or foreign: one line)
        raise ValueError(f"--checkpoint {checkpoint_file}: does not load ({type(err).__name__})") from None
    why = misfit(checkpoint)
    if why is not None:
        raise ValueError(f"--checkpoint {checkpoint_file}: does not fit run {run_id}'s spec ({why})")
    return spec, checkpoint

"""Load a trained actor or critic back from an MLflow run, as TensorDict modules."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
import yaml
from tensordict.nn import TensorDictSequential

from pgtorchrl.config.artifacts import ACTOR, CRITIC, ENV_TRANSFORMS, POLICY_MODEL_FILES, SPEC
from pgtorchrl.envs.gym import (
    freeze_transforms,
    load_transforms_state,
    observation_transforms,
    user_transforms,
)
from pgtorchrl.modules.recurrent import CarriedMemory, add_memory, is_recurrent, memory_specs
from pgtorchrl.pipeline.build import build_policy, eval_env
from pgtorchrl.pipeline.parse import parse_spec
from pgtorchrl.pipeline.schema import Spec
from pgtorchrl.record.tracking import mlflow_client, resolve_tracking_uri
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
    "DamagedArtifactError",
    "load_source",
    "load_files",
    "model_files",
    "artifact_files",
    "Loaded",
    "rendering_run",
]


class MissingArtifactError(LookupError):
    """A run lacks an artifact loading it needs: the message says which, and what to do."""

    def __str__(self) -> str:
        return str(self.args[0])


class DamagedArtifactError(MissingArtifactError):
    """An artifact is there but does not load as what it should be (altered, truncated, foreign):
    nothing in it was executed (weights load with ``weights_only=True``, specs with ``safe_load``)."""


def _weights(path: Path, device: str):
    """A state dict (or the transforms' statistics) saved by a run, or a one-line
    :class:`DamagedArtifactError`: ``weights_only=True`` refuses any pickle that would run code."""
    try:
        return torch.load(path, weights_only=True, map_location=device)
    except Exception as err:  # noqa: BLE001 (any damage: torn, random bytes, a pickle weights_only refuses)
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise DamagedArtifactError(
            f"{path.name} does not load as weights ({type(err).__name__}: {first}); nothing in it was run: "
            f"the files were altered, or are not a pgtorchrl run's"
        ) from None


def _missing(run_id: str, status: str, artifact: str) -> str:
    """What a run that lacks ``artifact`` is, and what to do instead."""
    if artifact == SPEC:
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
        return _spec(_download(run_id, SPEC, tracking_uri, tmp), f"run {run_id}: {SPEC}", device)


def _spec(path: Path, where: str, device: str | None) -> Spec:
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise DamagedArtifactError(f"{where}: does not read as YAML ({first})") from None
    if device is not None and isinstance(raw, dict):
        raw["device"] = device
    return parse_spec(raw, where)


Files = Callable[[str], Path]
"""A run's files by their artifact names (:mod:`pgtorchrl.config.artifacts`): a local path each."""


def _load(spec: Spec, which: str, files: Files, eval_env=None):
    """``which`` module (``"actor"`` or ``"critic"``), rebuilt from ``spec`` with the trained
    weights in ``files``, and the frozen observation transforms it was trained behind (or
    ``None``), and the env they were built for (closed: its specs remain). ``eval_env``, if
    given, gets the run's env-transform statistics too (frozen)."""
    env, actor, critic = build_policy(spec)
    module = actor if which == "actor" else critic
    if module is None:
        raise ValueError("the run has no critic (its spec has no `critic:` section)")
    state = _weights(files(ACTOR if which == "actor" else CRITIC), spec.device)
    if user_transforms(env):
        transforms = _weights(files(ENV_TRANSFORMS), spec.device)
        for target in (env, eval_env) if eval_env is not None else (env,):
            load_transforms_state(target, transforms)
            freeze_transforms(target)
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:  # keys or shapes not this spec's network's
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise DamagedArtifactError(f"the {which}'s weights do not fit the spec's {which} ({first})") from None
    inputs = observation_transforms(env)
    env.close()
    return module, inputs, env


def _behind_inputs(module, transforms):
    """``module`` reading raw observations: behind the frozen observation transforms it was trained with."""
    return TensorDictSequential(transforms, module) if transforms is not None else module


def _with_inputs(module, transforms):
    """:func:`_behind_inputs`, a recurrent module carrying its hidden state between calls
    (:class:`CarriedMemory`)."""
    module = _behind_inputs(module, transforms)
    return CarriedMemory(module) if is_recurrent(module) else module


def _run_files(run_id: str, tracking_uri: str | None, tmp: str) -> Files:
    return lambda artifact: _download(run_id, artifact, tracking_uri, tmp)


def artifact_files(paths: dict, where: str) -> Files:
    """A policy model's files by their run artifact names, from its ``artifacts`` (key -> local
    path, keys as :data:`~pgtorchrl.config.artifacts.POLICY_MODEL_FILES`); ``where`` names the model."""

    def path(artifact: str) -> Path:
        found = paths.get(POLICY_MODEL_FILES.get(artifact, artifact))
        if not isinstance(found, (str, Path)):
            raise MissingArtifactError(f"the model at {where} has no {artifact}: it is not a pgtorchrl policy model")
        return Path(found)

    return path


def model_files(model_dir: str | Path) -> Files:
    """The files of a policy's MLflow Model (a local copy of it) by their run artifact names:
    the model's ``MLmodel`` names each under its ``artifacts`` key."""
    model_dir = Path(model_dir)
    try:
        meta = yaml.safe_load((model_dir / "MLmodel").read_text())
        artifacts = meta["flavors"]["python_function"]["artifacts"]
        paths = {key: model_dir / entry["path"] for key, entry in artifacts.items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        raise MissingArtifactError(
            f"{model_dir} is not a pgtorchrl policy model: its MLmodel names no artifacts"
        ) from None
    return artifact_files(paths, str(model_dir))


def _is_model_uri(source: str) -> bool:
    return source.startswith(("models:/", "runs:/")) or Path(source).is_dir()


class Loaded(NamedTuple):
    """A trained module rebuilt from its files (:func:`load_source`, :func:`load_files`)."""

    spec: Spec
    module: Any  # the actor or the critic, with its trained weights
    inputs: Any  # its frozen observation transforms (a module), or None
    env: Any  # the env it was built for (closed: its specs remain)
    eval_env: Any  # the env eval_env_of made, given the run's transform statistics, or None

    @property
    def policy(self):
        """The module reading raw observations (:func:`load_actor`'s form)."""
        return _with_inputs(self.module, self.inputs)

    @property
    def stateless_policy(self):
        """:attr:`policy` with a recurrent module's ``is_init`` and hidden states as TensorDict
        inputs and their next values as outputs (``("next", key)``), as a server or an exported
        file steps it: no :class:`~pgtorchrl.modules.recurrent.CarriedMemory` keeps them."""
        return _behind_inputs(self.module, self.inputs)


def load_files(files: Files, which: str, where: str, device: str | None = None, eval_env_of=None) -> Loaded:
    """``which`` module (``"actor"``, ``"critic"``) rebuilt from ``files`` (a run's or a policy
    model's); ``where`` names them in errors; ``eval_env_of(spec)``: an env to give the run's
    transform statistics to."""
    spec = _spec(files(SPEC), f"{where}: {SPEC}", device)
    env = eval_env_of(spec) if eval_env_of is not None else None
    module, inputs, built = _load(spec, which, files, eval_env=env)
    return Loaded(spec, module, inputs, built, env)


def load_source(
    source: str, which: str, tracking_uri: str | None = None, device: str | None = None, eval_env_of=None
) -> Loaded:
    """:func:`load_files` of ``source``: a run id, or an MLflow Model of a policy
    (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/MODEL_ID``, or a local copy's folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        if _is_model_uri(source):
            return load_files(
                model_files(_download_model(source, tracking_uri, tmp)), which, source, device, eval_env_of
            )
        return load_files(_run_files(source, tracking_uri, tmp), which, f"run {source}", device, eval_env_of)


def _download_model(source: str, tracking_uri: str | None, dst: str) -> Path:
    """A local copy of the MLflow Model ``source`` (a folder is used as it is)."""
    if Path(source).is_dir():
        return Path(source)
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        with _tracking(tracking_uri):
            return Path(mlflow.artifacts.download_artifacts(source, dst_path=dst))
    except MlflowException as err:
        first = (str(err.message).strip().splitlines() or [""])[0][:200]
        raise MissingArtifactError(f"{source}: no such model ({first})") from None


@contextlib.contextmanager
def _tracking(tracking_uri: str | None):
    """MLflow's fluent API (``models:/`` URIs resolve through it) pointed at ``tracking_uri``
    (resolved as every pgtorchrl command resolves it) for the block."""
    import mlflow

    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri, create=False))
    try:
        yield
    finally:
        if before is None:
            mlflow.set_tracking_uri("")
        else:
            mlflow.set_tracking_uri(before)


def load_actor(source: str, tracking_uri: str | None = None, device: str | None = None):
    """The trained ``ProbabilisticActor`` of an MLflow run, or of a policy's MLflow Model
    (``models:/NAME@champion``, ``models:/NAME/3``, ``models:/m-...``), rebuilt from its spec, on
    ``device`` if given, else on the run's own::

        actor = load_actor(run_id)
        td = actor(env.reset())  # writes action and action_log_prob

    A run whose env normalizes (or clips) observations with TorchRL transforms returns
    ``TensorDictSequential(transforms, actor)``: those transforms, frozen at the run's final
    statistics, then the actor, so it acts on raw observations exactly as in training. A
    recurrent actor (``lstm``, ``gru``) comes as a
    :class:`~pgtorchrl.modules.recurrent.CarriedMemory`: it keeps its hidden state from call to
    call (one call per step); ``reset()`` it at every episode's end.
    """
    return load_source(source, "actor", tracking_uri, device).policy


def load_critic(run_id: str, tracking_uri: str | None = None, device: str | None = None):
    """The trained critic (``ValueOperator`` writing ``state_value``) of an MLflow run (behind
    the run's frozen observation transforms, as :func:`load_actor`)."""
    return load_source(run_id, "critic", tracking_uri, device).policy


def evaluate_run(
    run_id: str, episodes: int = 10, tracking_uri: str | None = None, device: str | None = None
) -> torch.Tensor:
    """The returns of ``episodes`` deterministic episodes of a run's trained actor (one per env
    of a fresh env built from the run's spec, seeded with the spec's seed), on ``device`` if
    given, else on the run's own."""

    # the env applies the run's transforms (their statistics loaded with the actor)
    loaded = load_source(run_id, "actor", tracking_uri, device, lambda spec: eval_env(spec, episodes))
    env, actor = loaded.eval_env, loaded.module
    return evaluate(add_actor_memory(env, actor), actor, loaded.spec.eval.max_steps)


def rendering_run(run_id: str, tracking_uri: str | None = None):
    """One env of a run's spec that renders (``render_mode: rgb_array``, the run's env
    transforms and their statistics) and the run's trained actor acting in it (on CPU): what
    ``pgtorchrl eval --video`` records. Envs without ``make_kwargs`` (the torch-native ones)
    do not render."""

    def rendering_env(spec: Spec):
        make_kwargs = getattr(spec.env, "make_kwargs", None)
        if make_kwargs is None:
            raise ValueError(
                f"--video renders gymnasium envs (env.name: gym, gym_native or atari); run {run_id} used "
                f"{spec.env.name!r}"
            )
        env_section = spec.env.model_copy(update={"make_kwargs": {**make_kwargs, "render_mode": "rgb_array"}})
        return eval_env(spec.model_copy(update={"env": env_section}), 1)

    loaded = load_source(run_id, "actor", tracking_uri, "cpu", rendering_env)  # its env: the run's transforms
    return add_actor_memory(loaded.eval_env, loaded.module), loaded.module


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
    progress_fields = {f.name for f in fields(LoopState)} - {"stopped", "best"}  # older checkpoints lack these

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

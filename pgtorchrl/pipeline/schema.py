"""The pipeline spec's model: one typed section per component kind (the discriminated union of
its registered components, :mod:`pgtorchrl.components`) and the fixed sections (``train``,
``eval``, ``tracking``, ``sweep``, ``tune``), strict (unknown keys are errors, no string passes as
a number), with the cross-section rules of :mod:`pgtorchrl.pipeline.rules`. Reading a file into it
is :mod:`pgtorchrl.pipeline.parse`; its errors' one-line messages, :mod:`pgtorchrl.pipeline.messages`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, TypeAlias

from pydantic import AfterValidator, BaseModel, Field, PositiveFloat, PositiveInt, model_validator

from pgtorchrl.components import REGISTRIES
from pgtorchrl.config.registry import DOCUMENTED
from pgtorchrl.pipeline.rules import CrossSectionError, first_problem, whole_episodes
from pgtorchrl.pipeline.search_space import TuneConfig

__all__ = [
    "Spec",
    "StrictModel",
    "TrainConfig",
    "EvalConfig",
    "TrackingConfig",
    "SweepConfig",
    "TuneConfig",
    "FIXED_SECTIONS",
    "section_type",
    "in_memory_store",
    "PLUGIN_PATTERN",
]

PLUGIN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
"""A module name a spec may list under ``plugins:``."""


def _printable(name: str) -> str:
    if not name.isprintable():
        raise ValueError("must be printable text: no control characters (NUL, newline, tab ...)")
    return name


#: Experiment and run names: printable, and short enough for MLflow's stores.
Name = Annotated[str, Field(min_length=1, max_length=250), AfterValidator(_printable)]


def section_type(kind: str):
    """The discriminated union of every registered component of one section, keyed by ``name``."""
    return REGISTRIES[kind].spec_type()


if TYPE_CHECKING:  # a section's type is built from its registry at run time: to a type checker, any component
    EnvSection: TypeAlias = Any
    ActorSection: TypeAlias = Any
    CriticSection: TypeAlias = Any
    CollectorSection: TypeAlias = Any
    AdvantageSection: TypeAlias = Any
    LossSection: TypeAlias = Any
    OptimSection: TypeAlias = Any
else:
    EnvSection, ActorSection, CriticSection = section_type("env"), section_type("actor"), section_type("critic")
    CollectorSection, AdvantageSection = section_type("collector"), section_type("advantage")
    LossSection, OptimSection = section_type("loss"), section_type("optim")


class StrictModel(BaseModel):
    """The base of the spec's hand-written sections: strict (unknown keys are errors, no string
    passes as a number), each field's docstring its description."""

    model_config = DOCUMENTED


class TrainConfig(StrictModel):
    """The training loop (one collect -> advantage -> loss -> update cycle per batch)."""

    total_frames: Annotated[int, Field(gt=0, le=10**12)]
    """Env frames to collect in all (the x axis of every metric)."""
    value_steps: Annotated[int, Field(ge=1, le=1000)] = 1
    """Critic gradient steps per batch; the first is taken jointly with the actor (Spinning Up: 80)."""
    max_grad_norm: Optional[Annotated[float, Field(gt=0)]] = None
    """Clip the actor's and critic's gradient norms to this value (``null``: no clipping)."""
    joint_grad_norm: bool = False
    """Clip one gradient norm over the actor and the critic together, as SB3 and CleanRL do (one
    optimizer over both), instead of one norm per network; always one with a shared encoder."""
    iterations: Optional[Annotated[int, Field(gt=0, le=10**9)]] = None
    """Stop after this many updates (batches) even if frames remain (``null``: frames only)."""
    epochs: Annotated[int, Field(ge=1, le=1000)] = 1
    """Passes over each batch (PPO: 10); each pass is ``minibatches`` gradient steps."""
    minibatches: Annotated[int, Field(ge=1, le=10**6)] = 1
    """Shuffled minibatches per pass (PPO: 32); 1 and ``epochs: 1`` is one step on the whole batch."""
    sequence_length: Optional[Annotated[int, Field(ge=1, le=10**6)]] = None
    """Recurrent actors and critics (``lstm``, ``gru``): minibatches are drawn from segments of
    this many consecutive steps of one env, each starting from the hidden state stored when it
    was collected (``null``: each env's whole row of the batch, as CleanRL's
    ``ppo_atari_lstm.py``). Must divide the steps per env of a batch."""
    anneal_lr: bool = False
    """Anneal every gradient optimizer's learning rate linearly to 0 over ``total_frames``
    (CleanRL's ``anneal_lr``): each update uses ``lr * (1 - frames_before_its_batch /
    total_frames)``, logged as ``train/lr``."""
    target_kl: Optional[PositiveFloat] = None
    """Stop a batch's passes once ``train/approx_kl`` from the collecting policy exceeds this
    (``null``: always ``epochs`` passes)."""
    per_step_updates: bool = False
    """Sutton & Barto's boxed algorithms: after each batch of whole episodes, one optimizer
    step per time step t = 0, 1, ... (all episodes' step t at once), each with the weights the
    previous one left, instead of one step on the whole batch."""
    per_step_solver: Literal["auto", "sequential", "fixed_point"] = "auto"
    """How per-step updates are computed (:mod:`pgtorchrl.trainers.per_step`): ``sequential`` (the loop
    as written), ``fixed_point`` (the same recurrence solved for all steps at once: plain SGD,
    ``loss.reduction: sum``, one parameter row per run) or ``auto`` (fixed_point where it applies)."""


class EvalConfig(StrictModel):
    """Evaluation of the deterministic policy (the mode of pi)."""

    every_frames: Optional[PositiveInt] = None
    """Evaluate every this many env frames (``null``: only at the end)."""
    episodes: Annotated[int, Field(ge=0, le=10000)] = 10
    """Episodes per evaluation, run side by side in one batched env (0: no evaluation at all)."""
    target_return: Optional[float] = None
    """Stop training once ``eval/return_mean`` reaches this (``null``: never stop early)."""
    max_steps: Annotated[int, Field(ge=1, le=10**7)] = 100_000
    """An evaluation episode still running after this many steps is cut there and its return
    counted as it stands (a deterministic policy may never end an episode: the short corridor's)."""


def in_memory_store(uri: str) -> bool:
    """Whether ``uri`` names an in-memory SQLite database (every run in it vanishes with the process).

    >>> [in_memory_store(u) for u in ("sqlite://", "sqlite:///:memory:", "sqlite:///mlruns/mlflow.db")]
    [True, True, False]
    """
    return uri.startswith("sqlite:") and (uri.rstrip("/") == "sqlite:" or ":memory:" in uri)


def _stored(uri: str | None) -> str | None:
    if uri is not None and in_memory_store(uri):
        raise ValueError(
            "an in-memory SQLite store loses the run when the process ends: use sqlite:///mlruns/mlflow.db"
        )
    return uri


class TrackingConfig(StrictModel):
    """MLflow tracking."""

    tracking_uri: Annotated[Optional[str], AfterValidator(_stored)] = None
    """Tracking store; ``null`` uses $MLFLOW_TRACKING_URI or ``sqlite:///mlruns/mlflow.db``."""
    run_name: Optional[Name] = None
    """MLflow run name (``null``: MLflow picks one)."""
    log_models: bool = True
    """Log the final actor/critic weights as artifacts, and the policy as an MLflow Model
    (``policy``: ``mlflow.pyfunc``, observations in, actions out; see the guide's "Deploying a policy")."""
    register_model: Optional[Name] = None
    """Register the run's ``policy`` model as a new version of this registered model (tagged with
    the final ``eval/return_mean``); the ``champion`` alias moves to it only if that beats the
    current champion's. ``null``: not registered."""
    checkpoint_every_frames: Optional[Annotated[int, Field(ge=1)]] = 50_000
    """Log a checkpoint (``checkpoints/frames_N.pt``: weights, optimizers, RNG and env state,
    progress) every this many frames and at the end; ``pgtorchrl resume RUN_ID`` continues
    from the newest. ``null``: only at the end."""
    curve_x: Literal["frames", "iteration"] = "frames"
    """x axis of the learning-curve plot (``iteration``: one episode per env per iteration
    with the ``episodes`` collector, as the textbook's figures)."""
    reference_return: Optional[float] = None
    """A dashed horizontal line on the learning-curve plot (e.g. the optimal value)."""
    reference_label: str = "reference"
    """Its legend label."""
    tags: Annotated[dict[str, Annotated[str, Field(max_length=5000)]], Field(max_length=100)] = {}
    """Extra MLflow run tags (``mlflow.parentRunId: RUN_ID`` makes the run a child of that run)."""


class SweepConfig(StrictModel):
    """Runs the spec once per combination of values, each as a child MLflow run of one parent."""

    values: Annotated[dict[str, Annotated[list[Any], Field(min_length=1, max_length=1000)]], Field(min_length=1)]
    """``{key.path: [value, ...]}``: the spec fields to vary (values typed as in the file)."""
    mode: Literal["grid", "zip"] = "grid"
    """``grid``: every combination; ``zip``: the i-th value of every list together."""
    labels: Optional[list[str]] = None
    """A legend label per combination (default: ``key=value`` pairs)."""
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    """Child runs trained side by side (each on one thread: use up to one per core); with
    ``backend: local``, 1 trains them one after another in this process, more in local processes."""
    backend: Literal["local", "ray"] = "local"
    """``local``: this machine's processes; ``ray``: each child run a Ray task, ``workers`` at a time,
    on a local Ray or the cluster at ``address``."""
    address: Optional[str] = None
    """With ``backend: ray``: an existing cluster (``auto``, ``ray://HOST:10001``); ``null`` starts a local Ray."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``sweep: {optim.lr: [1.0e-3, 3.0e-3]}`` means ``sweep: {values: {optim.lr: [...]}}``."""
        if isinstance(data, dict) and data and not set(cls.model_fields) & data.keys():
            return {"values": data}
        return data


class Spec(StrictModel):
    """A whole pipeline; see ``pipelines/vpg_cartpole.yaml`` for a commented example."""

    experiment: Name
    """The MLflow experiment the run belongs to (created on first use)."""
    plugins: list[Annotated[str, Field(pattern=PLUGIN_PATTERN)]] = []
    """Python modules imported before the spec is validated: they may register components
    (``@ACTORS.register("my_actor")``), and only their factories may be named as
    ``module:function``. A spec without ``plugins`` runs no code but pgtorchrl's."""
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    """Seeds torch, the envs and the collector: the same spec and seed give the same metrics on CPU."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where the actor, the critic, the advantages, the loss and the torch-native envs run."""
    env: EnvSection
    """The environment: a gymnasium id, an ALE game or a torch-native env, batched."""
    actor: ActorSection
    """The policy pi(a|s): a TorchRL ProbabilisticActor."""
    critic: Optional[CriticSection] = None
    """The value function V(s): a TorchRL ValueOperator writing state_value (optional)."""
    collector: CollectorSection
    """How batches of env frames are collected."""
    advantage: AdvantageSection
    """The weight of grad log pi: writes advantage and value_target."""
    loss: LossSection
    """The loss whose loss_* terms are minimized."""
    optim: OptimSection
    """The actor's optimizer; the critic gets one of its own from this section unless critic_optim is given."""
    critic_optim: Optional[OptimSection] = None
    """The critic's optimizer (null: built from the optim section)."""
    train: TrainConfig
    """The training loop."""
    eval: EvalConfig = EvalConfig()
    """Evaluation of the deterministic policy."""
    tracking: TrackingConfig = TrackingConfig()
    """MLflow tracking, checkpoints and models."""
    sweep: Optional[SweepConfig] = None
    """Run the spec once per combination of values."""
    tune: Optional[TuneConfig] = None
    """A hyperparameter study over the spec (Optuna)."""

    @model_validator(mode="before")
    @classmethod
    def _default_collector(cls, data: Any) -> Any:
        """A ``collector:`` without a ``name`` is TorchRL's ``Collector`` (``sync``), so
        ``collector: {backend: ray, num_collectors: 4}`` reads as TorchRL's own call."""
        section = data.get("collector") if isinstance(data, dict) else None
        if isinstance(section, dict) and "name" not in section:
            data = {**data, "collector": {"name": "sync", **section}}
        return data

    @property
    def whole_episodes(self) -> bool:
        """Whether the collector yields complete episodes (one per row)."""
        return whole_episodes(self)

    @model_validator(mode="after")
    def _cross_section_rules(self) -> "Spec":
        """The rules tying sections together (:mod:`pgtorchrl.pipeline.rules`), once each is valid."""
        problem = first_problem(self)
        if problem is not None:
            raise CrossSectionError(*problem)
        return self


FIXED_SECTIONS: dict[str, type[BaseModel]] = {
    "train": TrainConfig,
    "eval": EvalConfig,
    "tracking": TrackingConfig,
    "sweep": SweepConfig,
    "tune": TuneConfig,
}
"""The sections that are not components: their models by section name."""

"""The actors and critics a spec can name (``actor:``, ``critic:``), registered by name.

Each factory's keyword-only parameters are the YAML fields of its section (the keyword names of
the builder it calls); its positional parameter is wiring (the built env, whose specs size the
networks). The builders are imported inside the factories: validating a spec reads these
signatures without importing torch (see :mod:`pgtorchrl.envs.catalog`).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated, Optional

from pydantic import Field, PositiveInt

from pgtorchrl.config.fields import HiddenSizes, Keys
from pgtorchrl.config.registry import Registry, keyword_docs, keyword_section
from pgtorchrl.modules.choices import Activation, Distribution

if TYPE_CHECKING:
    from torchrl.envs import EnvBase

__all__ = ["ACTORS", "CRITICS", "RECURRENT_CELLS"]

ACTORS = Registry("actor", wiring=("env",), base=("torch", "Module"))
CRITICS = Registry("critic", wiring=("env",), base=("torch", "Module"))

Layers = Annotated[list[PositiveInt], Field(min_length=1, max_length=8)]
"""One entry per convolution (channels, kernel sizes, strides)."""


def _documented(annotation, doc: str):
    """``annotation`` with its spec doc line (for the fields these factories add to ``mlp``'s)."""
    return Annotated[annotation, Field(description=doc)]


def _conv(channels: list[int], kernel_sizes: list[int], strides: list[int], out_features: int):
    from pgtorchrl.modules.encoders import ConvSettings

    return ConvSettings(tuple(channels), tuple(kernel_sizes), tuple(strides), out_features)


def _actor(env: "EnvBase", fields: dict, conv=None, memory=None):
    """``make_actor`` for the env's specs with a section's fields (and, for ``cnn``, its
    convolutions; for ``lstm`` and ``gru``, its recurrent trunk)."""
    from pgtorchrl.modules.models import make_actor

    return make_actor(env.observation_spec, env.action_spec, conv=conv, memory=memory, **fields)


def _critic(env: "EnvBase", fields: dict, conv=None, memory=None):
    """``make_critic`` for the env's observation spec with a section's fields (and convolutions,
    or a recurrent trunk); ``share_encoder`` is the pipeline's to apply, once the actor is built
    (:func:`pgtorchrl.modules.shared_encoder.share_encoder`)."""
    from pgtorchrl.modules.models import make_critic

    fields = {k: v for k, v in fields.items() if k != "share_encoder"}
    return make_critic(env.observation_spec, conv=conv, memory=memory, **fields)


CONV_FIELDS = {  # name: (annotation, default): the Nature-CNN (Mnih et al. 2015)
    "channels": (_documented(Layers, "Output channels of each convolution (ReLU after each)."), [32, 64, 64]),
    "kernel_sizes": (_documented(Layers, "Each convolution's square kernel size."), [8, 4, 3]),
    "strides": (_documented(Layers, "Each convolution's stride."), [4, 2, 1]),
    "out_features": (_documented(PositiveInt, "Units of the layer after the convolutions (ReLU)."), 512),
}
CNN_DEFAULTS = {"in_keys": ["pixels"], "hidden_sizes": [], "activation": "relu"}
"""Where the ``cnn`` sections' defaults differ from ``mlp``'s: images under ``pixels``, the head
straight after the convolutions' units, ReLU (CleanRL's Atari agent)."""


def _cnn(mlp_factory, build, summary: str):
    """The ``cnn`` factory over ``mlp_factory`` (an ``mlp`` actor or critic): its fields, with
    :data:`CNN_DEFAULTS`, plus the convolutions' (:data:`CONV_FIELDS`, written once here); ``build``
    (:func:`_actor` or :func:`_critic`) builds it with them."""
    params = list(inspect.signature(mlp_factory).parameters.values())
    params = [p.replace(default=CNN_DEFAULTS.get(p.name, p.default)) for p in params]
    conv = [
        inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, annotation=t, default=d)
        for k, (t, d) in CONV_FIELDS.items()
    ]

    def factory(env, **fields):
        settings = _conv(*(fields.pop(k) for k in CONV_FIELDS))
        return build(env, fields, settings)

    factory.__signature__ = inspect.Signature(params[:2] + conv + params[2:])  # type: ignore[attr-defined]
    factory.__doc__ = _with_fields_docs(summary, mlp_factory, {p.name for p in params})
    return factory


def _with_fields_docs(summary: str, mlp_factory, names: set[str]) -> str:
    """``summary`` and the ``Keyword Args:`` of ``mlp_factory`` that a derived factory keeps."""
    kept = {k: v for k, v in keyword_docs(inspect.getdoc(mlp_factory)).items() if k in names}
    return f"{summary}\n\n{keyword_section(kept)}"


@ACTORS.register("mlp")
def mlp_actor(
    env: "EnvBase",
    *,
    in_keys: Keys = ["observation"],
    hidden_sizes: HiddenSizes = [64, 64],
    activation: Activation = "tanh",
    distribution: Distribution = "auto",
    init_log_std: float = -0.5,
    mask_key: Optional[str] = "action_mask",
    ortho_init: bool = False,
):
    """ProbabilisticActor: an MLP on in_keys (discrete ones one-hot, images by a CNN), masked by mask_key if present.

    Keyword Args:
        in_keys: The observation keys it reads, each by its kind's encoder (vectors as they are,
            discrete one-hot, images by the convolutions), concatenated before the MLP.
        hidden_sizes: The MLP's hidden layer widths ([] : the head on the encoders' output).
        activation: The nonlinearity after each hidden layer.
        distribution: The action distribution; auto: categorical for Discrete and MultiDiscrete
            actions, bernoulli for MultiBinary, normal for Box.
        init_log_std: The initial log standard deviation of a Box action (state-independent).
        mask_key: The observation key of a boolean legal-action mask (used when the env has
            it: MaskedCategorical; null: never masked).
        ortho_init: CleanRL's and SB3's orthogonal initialization (gain sqrt 2, the policy
            head 0.01, zero biases); false: PyTorch's default."""
    fields = dict(in_keys=in_keys, hidden_sizes=hidden_sizes, activation=activation, distribution=distribution)
    return _actor(env, {**fields, "init_log_std": init_log_std, "mask_key": mask_key, "ortho_init": ortho_init})


Preferences = Annotated[list[float], Field(min_length=2, max_length=2)]


@ACTORS.register("linear_softmax")
def linear_softmax(
    env: "EnvBase",
    *,
    init_preferences: Preferences = [-1.47, 1.47],
    prob_floor: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.0,
    independent_runs: bool = False,
):
    """Textbook linear softmax over x(s,right)=[1,0], x(s,left)=[0,1]; independent_runs: a theta per env.

    Keyword Args:
        init_preferences: The initial theta (the preferences of right and left).
        prob_floor: Each action's probability kept at least this (Sutton & Barto's epsilon).
        independent_runs: One theta per env, so each env is an independent run."""
    from pgtorchrl.modules.linear_softmax import make_corridor_actor

    num_runs = env.batch_size.numel() if independent_runs else None
    return make_corridor_actor(init_preferences, prob_floor, num_runs)


@CRITICS.register("scalar")
def scalar_critic(env: "EnvBase", *, init: float = 0.0, independent_runs: bool = False):
    """The textbook's scalar baseline v(s, w) = w (one w, or one per env with independent_runs).

    Keyword Args:
        init: The initial w.
        independent_runs: One w per env (with the linear_softmax actor's independent_runs)."""
    from torchrl.modules import ValueOperator

    from pgtorchrl.modules.linear_softmax import ScalarValue

    num_runs = env.batch_size.numel() if independent_runs else None
    return ValueOperator(ScalarValue(init, num_runs), in_keys=["observation"])


@CRITICS.register("mlp")
def mlp_critic(
    env: "EnvBase",
    *,
    in_keys: Keys = ["observation"],
    hidden_sizes: HiddenSizes = [64, 64],
    activation: Activation = "tanh",
    share_encoder: bool = False,
    ortho_init: bool = False,
):
    """ValueOperator: an MLP on in_keys (one-hot discrete, a CNN or the actor's with share_encoder) -> state_value.

    Keyword Args:
        in_keys: The observation keys it reads, each by its kind's encoder, as the actor's.
        hidden_sizes: The MLP's hidden layer widths.
        activation: The nonlinearity after each hidden layer.
        share_encoder: Use the actor's encoders (one trunk under both heads, CleanRL's Atari
            agent) instead of its own.
        ortho_init: CleanRL's and SB3's orthogonal initialization (gain sqrt 2, the value head 1,
            zero biases); false: PyTorch's default."""
    return _critic(env, dict(in_keys=in_keys, hidden_sizes=hidden_sizes, activation=activation, ortho_init=ortho_init))


ACTORS.register("cnn")(
    _cnn(
        mlp_actor,
        _actor,
        "The mlp actor with these convolutions for image keys (Nature-CNN; MinAtar's: [16], [3], [1], 128).",
    )
)
CRITICS.register("cnn")(
    _cnn(mlp_critic, _critic, "The mlp critic with these convolutions for its image keys (default: the Nature-CNN).")
)


# --- policies with memory (pgtorchrl.modules.recurrent) ------------------------------------------
RECURRENT_CELLS = ("lstm", "gru")
"""The actor and critic choices with a hidden state (trained on sequences)."""
HiddenSize = Annotated[int, Field(ge=1, le=8192)]
NumLayers = Annotated[int, Field(ge=1, le=16)]


MEMORY_FIELDS = {  # name: (annotation, default): the recurrent trunk's, written once for actor and critic
    "hidden_size": (_documented(HiddenSize, "Units of the recurrent cell's hidden state."), 64),
    "num_layers": (_documented(NumLayers, "Stacked recurrent layers."), 1),
    "python_based": (_documented(bool, "The cell as a Python loop over time (TorchRL's): slower."), False),
}
MEMORY_DEFAULTS = {"hidden_sizes": [64]}
"""Where the ``lstm``/``gru`` sections' defaults differ from ``mlp``'s: one layer after the RNN."""


def _recurrent(mlp_factory, build, cell: str, prefix: str, summary: str):
    """The ``lstm`` or ``gru`` factory over ``mlp_factory`` (an ``mlp`` actor or critic): its
    fields (less ``share_encoder``: a recurrent trunk is its own), with :data:`MEMORY_DEFAULTS`,
    plus the trunk's (:data:`MEMORY_FIELDS`); ``build`` (:func:`_actor` or :func:`_critic`)
    builds it behind a ``cell`` trunk whose keys start with ``prefix``."""
    params = [p for p in inspect.signature(mlp_factory).parameters.values() if p.name != "share_encoder"]
    params = [p.replace(default=MEMORY_DEFAULTS.get(p.name, p.default)) for p in params]
    memory_params = [
        inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, annotation=t, default=d)
        for k, (t, d) in MEMORY_FIELDS.items()
    ]

    def factory(env, **fields):
        from pgtorchrl.modules.recurrent import MemorySettings

        memory = MemorySettings(cell, *(fields.pop(k) for k in MEMORY_FIELDS), prefix=prefix)
        return build(env, fields, memory=memory)

    factory.__signature__ = inspect.Signature(params[:2] + memory_params + params[2:])  # type: ignore[attr-defined]
    factory.__doc__ = _with_fields_docs(summary, mlp_factory, {p.name for p in params})
    return factory


for _cell in RECURRENT_CELLS:
    _rnn = f"TorchRL's {_cell.upper()}Module (hidden_size, num_layers)"
    ACTORS.register(_cell)(
        _recurrent(
            mlp_actor,
            _actor,
            _cell,
            "",
            f"ProbabilisticActor with memory: in_keys' encoders, {_rnn}, then an MLP (hidden_sizes); "
            "trained on sequences (pgtorchrl.modules.recurrent).",
        )
    )
    CRITICS.register(_cell)(
        _recurrent(
            mlp_critic,
            _critic,
            _cell,
            "critic_",
            f"Value network with its own memory: in_keys' encoders, {_rnn} (state keys critic_*), "
            "then an MLP -> state_value.",
        )
    )

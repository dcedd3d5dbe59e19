"""Builds the components a validated spec names, and checks their key flow."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict.nn import TensorDictSequential

from pgtorchrl.collectors.ray import WorkerEnvs
from pgtorchrl.components import ACTORS, ADVANTAGES, COLLECTORS, CRITICS, ENVS, LOSSES, OPTIMIZERS
from pgtorchrl.envs.atari import end_of_life
from pgtorchrl.envs.gym import freeze_transforms, load_transforms_state, transforms_state
from pgtorchrl.modules.recurrent import add_memory, is_recurrent, memory_specs
from pgtorchrl.modules.shared_encoder import own_parameters, share_encoder
from pgtorchrl.pipeline.contracts import (
    check_collector,
    check_components,
    check_env,
    check_optimizer,
    fixed_point_unsupported,
)
from pgtorchrl.pipeline.keyflow import check_key_flow, env_keys
from pgtorchrl.pipeline.schema import Spec

__all__ = ["Pipeline", "build_pipeline", "build_policy", "check_device", "env_from_config", "eval_env"]


def env_from_config(env_config: dict, memory: dict | None = None):
    """Builds, on CPU, the env a spec's ``env:`` section describes (a plain dict: it travels to
    remote workers, which collect on CPU), primed for the hidden states in ``memory``
    (:func:`pgtorchrl.modules.recurrent.memory_specs`)."""
    entry = ENVS[env_config["name"]]
    return add_memory(ENVS.build(entry.model(**env_config), "cpu"), memory or {})


def check_device(device: str) -> None:
    """A one-line error for ``device: cuda`` where torch sees no CUDA device."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device: 'cuda', but torch {torch.__version__} sees no CUDA device on this machine: set device: cpu"
        )


def eval_env(spec: Spec, episodes: int, memory: dict | None = None):
    """An env of ``episodes`` side-by-side envs for evaluating ``spec``'s actor, seeded on its
    own stream (``seed + 10000``): evaluation never shifts training's. ``memory``: the hidden
    states of a recurrent actor (:func:`pgtorchrl.modules.recurrent.memory_specs`), reset to zero
    at every episode start."""
    env = ENVS.build(spec.env.model_copy(update={"num_envs": episodes}), spec.device)
    add_memory(env, memory or {})
    env.set_seed(spec.seed + 10_000)
    freeze_transforms(env)  # running statistics come from training (Pipeline.sync_eval_env), never from evaluation
    return env


@dataclass
class Pipeline:
    """The built components of a spec (everything but the collector and the tracking)."""

    spec: Spec
    env: Any
    actor: Any
    critic: Any | None
    advantage: Any
    loss: Any
    actor_optim: torch.optim.Optimizer
    critic_optim: torch.optim.Optimizer | None
    critic_params: list[torch.nn.Parameter] = field(default_factory=list)
    """What ``critic_optim`` steps: the critic's parameters less the trunk it shares with the
    actor (``critic.share_encoder``: :mod:`pgtorchrl.modules.shared_encoder`), which the actor's
    optimizer steps."""
    shares_encoder: bool = False
    """Whether actor and critic share parameters (one model: one gradient norm to clip)."""

    @functools.cached_property
    def actor_params(self) -> list[torch.nn.Parameter]:
        """The actor's parameters, listed once (walking its modules costs 14 us, at each of
        PPO's 320 minibatch steps per batch): what the trainer clips."""
        return list(self.actor.parameters())

    @property
    def memory(self) -> dict:
        """The hidden-state keys of a recurrent actor or critic, with their shapes (empty for
        feed-forward networks): what every env of the run primes (:mod:`pgtorchrl.modules.recurrent`)."""
        return memory_specs(self.actor, self.critic)

    @property
    def recurrent(self) -> bool:
        """Whether the actor or the critic has memory: updates then run on sequences."""
        return is_recurrent(self.actor, self.critic)

    @property
    def collection_policy(self):
        """What the collector runs at every step (:func:`collection_policy`)."""
        return collection_policy(self.actor, self.critic)

    def make_collector(self):
        memory = self.memory
        build = functools.partial(env_from_config, memory=memory) if memory else env_from_config
        worker_envs = WorkerEnvs(self.spec.env.model_dump(mode="json"), build, self.spec.seed)  # remote workers
        collector = COLLECTORS.build(
            self.spec.collector, self.env, self.collection_policy, self.spec.train.total_frames, worker_envs
        )
        check_collector(self.spec, collector)
        return collector

    def sync_eval_env(self, env) -> None:
        """Gives the evaluation env the training env's transform statistics, frozen (the
        normalization a policy was trained with is part of it)."""
        load_transforms_state(env, transforms_state(self.env))

    def make_eval_env(self):
        episodes = self.spec.eval.episodes
        if getattr(self.spec.actor, "independent_runs", False):
            episodes = self.spec.env.num_envs  # one parameter set per env: evaluate each run once
        return eval_env(self.spec, episodes, memory_specs(self.actor))


def collection_policy(actor, critic):
    """What a collector runs at every step: the actor, and a recurrent critic after it, so that
    the batch stores the critic's hidden state at every step too (its values of ``s_t`` and
    ``s_{t+1}`` are then one step each from a stored state, as exact as the collection's)."""
    return TensorDictSequential(actor, critic) if is_recurrent(critic) else actor


def build_policy(spec: Spec, env=None):
    """The env and the actor (and critic) of a spec, seeded: the same seed gives the same weights."""
    check_device(spec.device)
    torch.manual_seed(spec.seed)
    env = env if env is not None else ENVS.build(spec.env, spec.device)
    check_env(spec, env)
    env.set_seed(spec.seed)
    # built on CPU from the env's specs, then moved: every module of the pipeline runs on spec.device
    actor = ACTORS.build(spec.actor, env).to(spec.device)
    critic = CRITICS.build(spec.critic, env).to(spec.device) if spec.critic is not None else None
    if critic is not None and getattr(spec.critic, "share_encoder", False):
        share_encoder(actor, critic)  # the critic's own encoder (drawn, then dropped) never trains
    add_memory(env, memory_specs(actor, critic))  # recurrent networks: is_init and zero states at resets
    return env, actor, critic


def preflight(env, actor, critic) -> None:
    """One deterministic forward of the actor (and critic) on a batch of the env's shape (its
    ``fake_tensordict``: no reset, no random draw, so seeded runs are unchanged): a network or
    env too large to hold fails here, while the pipeline is built, not mid-run."""
    from torchrl.envs import ExplorationType, set_exploration_type

    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        td = env.fake_tensordict()
        actor(td)
        if critic is not None:
            critic(td)


def _keys(module) -> tuple[list, list]:
    return module.in_keys, module.out_keys


def build_pipeline(spec: Spec) -> Pipeline:
    """Builds every component, checks each against its kind's contract
    (:mod:`pgtorchrl.pipeline.contracts`) and that each module's inputs are written upstream."""
    env, actor, critic = build_policy(spec)
    advantage = ADVANTAGES.build(spec.advantage, critic)
    lives = end_of_life(env)
    if lives is not None:  # episodic life (Atari): the learner's episodes end at each lost life
        lives.register_keys(advantage)
    loss = LOSSES.build(spec.loss, actor, critic)
    check_components(spec, actor, critic, advantage, loss)
    preflight(env, actor, critic)
    check_key_flow(
        env_keys(env),
        [
            ("actor", *_keys(collection_policy(actor, critic))),
            ("advantage", advantage.in_keys, advantage.out_keys),
            ("loss", loss.in_keys, loss.out_keys),
        ],
    )
    actor_optim = OPTIMIZERS.build(spec.optim, actor.parameters())
    check_optimizer("optim", spec.optim, actor_optim)
    critic_optim = None
    critic_params = own_parameters(critic, actor) if critic is not None else []
    shared = critic is not None and len(critic_params) < len(list(critic.parameters()))
    if critic is not None:
        section = "critic_optim" if spec.critic_optim is not None else "optim"
        critic_optim = OPTIMIZERS.build(getattr(spec, section), critic_params)
        check_optimizer(section, getattr(spec, section), critic_optim)
    p = Pipeline(spec, env, actor, critic, advantage, loss, actor_optim, critic_optim, critic_params, shared)
    if spec.train.per_step_solver == "fixed_point":
        why = fixed_point_unsupported(p)
        if why is not None:
            raise ValueError(f"train.per_step_solver: fixed_point {why}: set sequential (or auto)")
    return p

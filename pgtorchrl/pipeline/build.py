"""Builds the components a validated spec names, and checks their key flow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from pgtorchrl.collectors.ray import WorkerEnvs
from pgtorchrl.components import ACTORS, ADVANTAGES, COLLECTORS, CRITICS, ENVS, LOSSES, OPTIMIZERS
from pgtorchrl.envs.atari import end_of_life
from pgtorchrl.envs.gym import freeze_transforms, load_transforms_state, transforms_state
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


def env_from_config(env_config: dict):
    """Builds, on CPU, the env a spec's ``env:`` section describes (a plain dict: it travels to
    remote workers, which collect on CPU)."""
    entry = ENVS[env_config["name"]]
    return ENVS.build(entry.model(**env_config), "cpu")


def check_device(device: str) -> None:
    """A one-line error for ``device: cuda`` where torch sees no CUDA device."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device: 'cuda', but torch {torch.__version__} sees no CUDA device on this machine: set device: cpu"
        )


def eval_env(spec: Spec, episodes: int):
    """An env of ``episodes`` side-by-side envs for evaluating ``spec``'s actor, seeded on its
    own stream (``seed + 10000``): evaluation never shifts training's."""
    env = ENVS.build(spec.env.model_copy(update={"num_envs": episodes}), spec.device)
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

    def make_collector(self):
        worker_envs = WorkerEnvs(
            self.spec.env.model_dump(mode="json"), env_from_config, self.spec.seed
        )  # remote workers
        collector = COLLECTORS.build(
            self.spec.collector, self.env, self.actor, self.spec.train.total_frames, worker_envs
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
        return eval_env(self.spec, episodes)


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
            ("actor", actor.in_keys, actor.out_keys),
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

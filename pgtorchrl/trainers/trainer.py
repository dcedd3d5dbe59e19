"""The training loop: collect -> advantage -> loss -> optimizer step(s) -> log -> evaluate.

One readable loop in the style of CleanRL's ``ppo.py``; every hyperparameter comes from the spec
(see :mod:`pgtorchrl.pipeline.schema` for what each one means).
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
from tensordict.nn import TensorDictSequential
from torchrl.modules import set_recurrent_mode
from tqdm import tqdm

from pgtorchrl.collectors.rollout import MASK_KEY
from pgtorchrl.config.artifacts import ACTOR, BEST_POLICY_MODEL, CRITIC, ENV_TRANSFORMS, POLICY_MODEL, SPEC
from pgtorchrl.envs.gym import observation_transforms, transforms_state
from pgtorchrl.modules.fast_policies import log_prob_and_entropy
from pgtorchrl.modules.models import ACTION_MASK_KEY, LOG_PROB_KEY, policy_kl
from pgtorchrl.modules.policy_io import PolicyIO, example_rows, policy_io
from pgtorchrl.objectives.trust_region import NaturalPolicyGradient
from pgtorchrl.objectives.value.functional import explained_variance
from pgtorchrl.pipeline.build import Pipeline, build_pipeline
from pgtorchrl.pipeline.contracts import critic_objective, critic_term
from pgtorchrl.pipeline.schema import Spec
from pgtorchrl.record.fast_exit import thread_locked_progress_bars
from pgtorchrl.record.interrupts import raise_swallowed_interrupt
from pgtorchrl.record.plots import curve_csv
from pgtorchrl.record.tracking import RECOVERY_DIR, TrackedRun, TrackingError, resolved_yaml, state_dict_bytes
from pgtorchrl.trainers.checkpoint import capture, checkpoint_path, restore, to_bytes
from pgtorchrl.trainers.evaluation import episode_stats, evaluate
from pgtorchrl.trainers.fused_adam import adam_step, zero_grad
from pgtorchrl.trainers.grad_clip import clip_grad_norm
from pgtorchrl.trainers.per_step import per_step_updates

__all__ = ["train", "LoopState", "TrainResult", "NonFiniteLossError", "NonFiniteParametersError", "RECOVERY_DIR"]

"""Where a run whose tracking failed mid-training leaves its last state and metrics (relative to
the working directory)."""
EXPLODED = 1e4
"""A weight larger than this in magnitude is reported (a run can diverge without a NaN loss)."""


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite: training stops rather than corrupt the weights."""


class NonFiniteParametersError(NonFiniteLossError):
    """A network's weights became NaN or infinite (divergence the losses did not show)."""


def check_parameters(p: Pipeline, iteration: int, frames: int, run: TrackedRun | None = None) -> None:
    """Raises :class:`NonFiniteParametersError` if a weight of the actor or critic is not finite
    (run before anything is saved: no checkpoint or model holds a diverged network), and warns
    once, on stderr and as the run's ``warning`` tag, when one exceeds :data:`EXPLODED`."""
    for name, module in (("actor", p.actor), ("critic", p.critic)):
        if module is None:
            continue
        params = [t.detach() for t in module.parameters()]
        if not all(bool(torch.isfinite(t).all()) for t in params):
            raise NonFiniteParametersError(
                f"the {name}'s weights are not finite after iteration {iteration} (frame {frames}): "
                f"lower optim.lr or set train.max_grad_norm"
            )
        largest = max((float(t.abs().max()) for t in params if t.numel()), default=0.0)
        if largest > EXPLODED and run is not None:
            run.warn_once(
                "exploding",
                f"the {name}'s largest weight is {largest:.3g} at frame {frames}: training "
                f"may have diverged (lower optim.lr or set train.max_grad_norm)",
            )


@dataclass
class TrainResult:
    run_id: str
    frames: int
    iterations: int
    eval_return: float | None
    solved: bool
    train_seconds: float
    curve: list[dict[str, float]]
    """Every iteration's metrics, with ``iteration`` and ``frames``."""
    stopped: str | None = None
    """Why ``on_eval`` stopped training early (e.g. ``"pruned"``), or ``None``."""


def _check_finite(losses: dict[str, float], iteration: int, frames: int) -> None:
    for name, value in losses.items():
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"train/{name} is {value} at iteration {iteration} (frame {frames}): "
                f"lower optim.lr or set train.max_grad_norm"
            )


def _scalars(losses) -> dict[str, float]:
    """A loss's scalar outputs, the metrics it reports (a TorchRL loss may add per-step tensors)."""
    return {k: v.item() for k, v in losses.items() if v.numel() == 1}


def _step(optim: torch.optim.Optimizer, params, max_grad_norm: float | None) -> float:
    """Clips (when asked) and applies the gradients already in ``params``; returns their norm."""
    norm = clip_grad_norm(params, max_grad_norm)  # torch's clip_grad_norm_, bit for bit
    adam_step(optim)  # optim.step(), bit for bit
    return float(norm)


def update(p: Pipeline, batch, iteration: int, frames: int) -> dict[str, float]:
    """One policy-gradient update on a batch whose ``advantage``/``value_target`` are written
    (a padded whole-episode batch counts only its ``("collector", "mask")`` steps): :func:`update_steps`,
    with the recurrent networks of a recurrent pipeline run over sequences (TorchRL's
    ``set_recurrent_mode``: :mod:`pgtorchrl.modules.recurrent`)."""
    with set_recurrent_mode(p.recurrent):
        return update_steps(p, batch, iteration, frames)


def update_steps(p: Pipeline, batch, iteration: int, frames: int) -> dict[str, float]:
    """The update of :func:`update`.

    With a gradient optimizer, ``train.epochs`` passes over the batch, each in
    ``train.minibatches`` shuffled minibatches (PPO; 1 and 1: one step on the whole batch), each
    a :func:`gradient_step`; with ``train.target_kl`` the passes stop once the policy has moved
    further than that from the collecting one. With a trust-region optimizer (``npg``, ``trpo``)
    the actor takes one :func:`trust_region_step`. Also measures ``train/approx_kl``, the mean of
    ``log pi_old(a|s) - log pi_new(a|s)`` over the batch, where ``pi_old`` collected it.
    """
    train = p.spec.train
    if isinstance(p.actor_optim, NaturalPolicyGradient):
        metrics = trust_region_step(p, batch, iteration, frames)
    elif train.epochs == 1 and train.minibatches == 1:
        metrics = gradient_step(p, batch, iteration, frames)
    else:
        steps = _sequences(batch, train.sequence_length) if p.recurrent else _real_steps(batch)
        keys = _minibatch_keys(p, steps)
        steps = steps if keys is None else steps.select(*keys)
        size = math.ceil(steps.shape[0] / train.minibatches)  # torch.chunk's sizes
        for epoch in range(1, train.epochs + 1):  # noqa: B007 (read after the loop: train/epochs)
            # shuffled minibatches as slices of one gather per epoch (a gather of every key per
            # minibatch cost a tenth of PPO's update here)
            minibatches = steps[torch.randperm(steps.shape[0])].split(size)
            for i, minibatch in enumerate(minibatches):  # the metrics: the epoch's last minibatch's
                last = i == len(minibatches) - 1
                metrics = gradient_step(p, minibatch, iteration, frames, statistics=last, by_hand=keys is not None)
            if train.target_kl is not None and _policy_stats(p, batch)["train/approx_kl"] > train.target_kl:
                break  # the policy left the region its batch describes
        metrics["train/epochs"] = float(epoch)
    stats = _policy_stats(p, batch)
    metrics["train/approx_kl"] = stats["train/approx_kl"]
    metrics.setdefault("train/entropy", stats["train/entropy"])  # where the loss reports none (no entropy term)
    return metrics


def anneal_lr(p: Pipeline, frames_before: int) -> float:
    """Sets every gradient optimizer's learning rate to its spec value times ``1 -
    frames_before / train.total_frames`` (CleanRL's linear annealing: a function of the frames,
    so a resumed run anneals as an uninterrupted one); returns the actor optimizer's (the
    critic's where the actor takes trust-region steps)."""
    frac = 1.0 - frames_before / p.spec.train.total_frames
    sections = [(p.actor_optim, p.spec.optim), (p.critic_optim, p.spec.critic_optim or p.spec.optim)]
    rates = []
    for optim, config in sections:
        if optim is None or isinstance(optim, NaturalPolicyGradient):
            continue  # no critic; a trust-region step has no learning rate
        for group in optim.param_groups:
            group["lr"] = config.lr * frac
        rates.append(config.lr * frac)
    return rates[0] if rates else float("nan")


def _sequences(batch, length: int | None):
    """A fixed-frame batch ``[*envs, T]`` as ``[segments, length]``: each env's row cut into
    segments of ``length`` consecutive steps (``None``: the whole row), the units a recurrent
    pipeline's minibatches are drawn from. Each starts from the hidden state stored at its first
    step when it was collected (truncated backpropagation through time, as sb3-contrib's
    ``RecurrentPPO`` and CleanRL's ``ppo_atari_lstm.py``: whole rows keep every step's context
    from the batch's start; shorter segments give more, smaller minibatches)."""
    rows = batch.reshape(-1, batch.shape[-1])
    length = length or rows.shape[-1]
    if rows.shape[-1] % length:
        steps = rows.shape[-1]
        raise ValueError(f"train.sequence_length {length} does not divide the {steps} steps per env of a batch")
    return rows.reshape(-1, length)


def _minibatch_keys(p: Pipeline, steps) -> list | None:
    """The keys a minibatch of ``steps`` needs, where the loss says (its ``minibatch_keys``:
    pgtorchrl's ``ClipPPOLoss`` on its gradients by hand, which covers flat batches of MLP networks
    only) and nothing else reads the minibatch (no critic steps of its own: ``train.value_steps``
    1); else ``None``: every key."""
    keys_of = getattr(p.loss, "minibatch_keys", None)
    if keys_of is None or p.spec.train.value_steps != 1:
        return None
    return keys_of(steps)


def _real_steps(batch):
    """The batch's steps as one flat batch (a padded batch: its ``("collector", "mask")`` steps only)."""
    mask = batch.get(MASK_KEY, None)
    return batch.reshape(-1) if mask is None else batch[mask]


def _loss_and_backward(loss, batch, statistics: bool = True, by_hand: bool = False):
    """The loss's outputs on ``batch``, the gradient of the sum of its ``loss_*`` terms in the
    parameters' ``.grad``: by the loss's own ``forward_backward`` where it has one (pgtorchrl's
    ``ClipPPOLoss``: gradients by hand for MLP networks, :mod:`pgtorchrl.objectives.ppo_gradients`;
    ``statistics=False``: it may give the ``loss_*`` terms alone; ``by_hand``: its
    ``analytic_forward_backward``, for a minibatch of :func:`_minibatch_keys`), else forward then
    ``backward()``."""
    if by_hand:
        return loss.analytic_forward_backward(batch, statistics=statistics)
    forward_backward = getattr(loss, "forward_backward", None)
    if forward_backward is not None:
        return forward_backward(batch, statistics=statistics)
    losses = loss(batch)
    sum(v for k, v in losses.items() if k.startswith("loss_")).backward()
    return losses


def gradient_step(
    p: Pipeline, batch, iteration: int, frames: int, statistics: bool = True, by_hand: bool = False
) -> dict[str, float]:
    """The actor takes one gradient step on the sum of the loss's ``loss_*`` terms; the critic
    takes ``train.value_steps`` steps on the loss's critic term (``loss_critic``, or
    ``loss_value`` for TorchRL's ``ReinforceLoss``), the first one on the same backward pass
    (so ``value_steps: 1`` is the joint A2C-style update, more is Spinning Up's VPG). A trunk
    the critic shares with the actor is the actor optimizer's, with one gradient norm clipped
    over both networks (:mod:`pgtorchrl.modules.shared_encoder`), as with ``train.joint_grad_norm``
    for two networks (SB3's and CleanRL's clipping). ``statistics=False``: the
    step's metrics may lack the loss's statistics (a minibatch whose metrics are not kept);
    ``by_hand``: ``batch`` is a minibatch of :func:`_minibatch_keys`, whose loss's gradients by hand
    hold on it (:meth:`~pgtorchrl.objectives.ppo.ClipPPOLoss.analytic_forward_backward`)."""
    max_norm = p.spec.train.max_grad_norm
    zero_grad(p.actor_optim)  # optim.zero_grad(set_to_none=True)
    if p.critic_optim is not None:
        zero_grad(p.critic_optim)
    scalars = _scalars(_loss_and_backward(p.loss, batch, statistics, by_hand))
    _check_finite(scalars, iteration, frames)  # before any optimizer step
    metrics = {f"train/{k}": v for k, v in scalars.items()}
    joint = p.shares_encoder or p.spec.train.joint_grad_norm
    if joint and p.critic_optim is not None:  # one model (a shared trunk), or asked: one norm, as CleanRL
        params = [*p.actor_params, *p.critic_params]
        metrics["train/grad_norm"] = _step(p.actor_optim, params, max_norm)
        adam_step(p.critic_optim)  # p.critic_optim.step(), as _step steps
    else:
        metrics["train/grad_norm"] = _step(p.actor_optim, p.actor_params, max_norm)
        if p.critic is not None and p.critic_optim is not None:  # built together
            _step(p.critic_optim, p.critic_params, max_norm)
    if p.critic is not None:
        _critic_steps(p, batch, p.spec.train.value_steps - 1, iteration, frames)
    return metrics


def _critic_steps(p: Pipeline, batch, steps: int, iteration: int, frames: int) -> None:
    """``steps`` gradient steps of the critic's optimizer on the loss's critic term."""
    if steps <= 0 or p.critic is None or p.critic_optim is None:  # built together: no critic, no critic steps
        return
    term = critic_term(p.loss) or "loss_critic"  # the contract: present whenever value_steps > 1
    objective = critic_objective(p.loss)
    for _ in range(steps):
        p.critic_optim.zero_grad(set_to_none=True)
        loss_critic = objective(batch)
        _check_finite({term: loss_critic.item()}, iteration, frames)
        loss_critic.backward()
        _step(p.critic_optim, p.critic_params, p.spec.train.max_grad_norm)


def trust_region_step(p: Pipeline, batch, iteration: int, frames: int) -> dict[str, float]:
    """NPG or TRPO (:mod:`pgtorchrl.objectives.trust_region`): the actor's step solves the natural-gradient
    problem on the loss's actor terms (every ``loss_*`` but the critic's: for TorchRL's
    ``PPOLoss``, the surrogate ``-mean(ratio * advantage)``) within the mean KL from the
    collecting policy; then the critic takes ``train.value_steps`` steps of its own optimizer.
    Logs the step's ``train/kl`` (measured after it), ``train/line_search_steps``,
    ``train/cg_residual``, ``train/surrogate_improvement`` and ``train/step_size``."""
    losses = p.loss(batch)
    scalars = _scalars(losses)
    _check_finite(scalars, iteration, frames)
    actor_terms = [k for k in losses.keys() if k.startswith("loss_") and k != critic_term(p.loss)]
    mask = batch.get(MASK_KEY, None)
    with torch.no_grad():
        old = p.actor.get_dist(batch.copy())  # the collecting policy: constants in the KL

    def closure():
        out = p.loss(batch)
        kl = policy_kl(p.actor, batch, old)
        return sum(out.get(k) for k in actor_terms), (kl if mask is None else kl[mask]).mean()

    optim = p.actor_optim
    if not isinstance(optim, NaturalPolicyGradient):  # update() sends only these here
        raise TypeError(f"a trust-region step needs optim npg or trpo, got {type(optim).__name__}")
    optim.step(closure)
    metrics = {f"train/{k}": v for k, v in scalars.items()}
    metrics.update({f"train/{k}": v for k, v in optim.stats.items()})
    if p.critic_optim is not None:
        _critic_steps(p, batch, p.spec.train.value_steps, iteration, frames)
    return metrics


@torch.no_grad()
def _policy_stats(p: Pipeline, batch) -> dict[str, float]:
    """The updated policy on the batch's real steps: ``train/approx_kl`` (the mean of
    ``log pi_old(a|s) - log pi_new(a|s)``, ``pi_old`` the collecting policy) and
    ``train/entropy``."""
    log_prob, entropy = log_prob_and_entropy(p.actor, batch, batch.get("action"))
    kl = batch.get(LOG_PROB_KEY) - log_prob
    mask = batch.get(MASK_KEY, None)
    if mask is not None:
        kl, entropy = kl[mask], entropy[mask]
    return {"train/approx_kl": kl.mean().item(), "train/entropy": entropy.mean().item()}


def update_per_step(p: Pipeline, batch, iteration: int, frames: int) -> dict[str, float]:
    """Sutton & Barto's boxed updates on a whole-episode batch (:mod:`pgtorchrl.trainers.per_step`):
    one update per time step t = 0, 1, ..., T-1 of every episode, each with the weights the
    previous one left. Reports the losses' means over the steps, the updated policy's entropy
    and ``train/approx_kl`` (plus ``train/solver_sweeps`` from the fixed-point solver);
    finiteness is checked once per batch (the run stops either way)."""
    steps = batch.shape[-1]
    totals = per_step_updates(p, batch)
    metrics = {f"train/{k}": (v / steps).item() for k, v in totals.items() if k.startswith("loss_")}
    _check_finite({k.removeprefix("train/"): v for k, v in metrics.items()}, iteration, frames)
    if "sweeps" in totals:
        metrics["train/solver_sweeps"] = float(totals["sweeps"])
    metrics.update(_policy_stats(p, batch))  # the updated policy's KL from the collecting one, and its entropy
    return metrics


def batch_metrics(p: Pipeline, batch) -> dict[str, float]:
    """What the advantage module computed: its own ``stats`` where it has them (pgtorchrl's:
    ``train/advantage_mean``/``_std`` before any normalization), else the mean and std of the
    ``advantage`` it wrote; where the batch has ``state_value``, ``train/explained_variance``
    of ``value_target`` (over the real steps of a padded batch); where the env gives a legal-action
    mask (``action_mask``), ``rollout/invalid_actions``: the batch's steps that took an illegal action."""
    mask = batch.get(MASK_KEY, None)

    def real(x):
        return x if mask is None else x[mask]

    stats = getattr(p.advantage, "stats", None)
    if stats is None:
        advantage = real(batch.get("advantage")).float()
        stats = {"advantage_mean": advantage.mean().item(), "advantage_std": advantage.std(unbiased=False).item()}
    metrics = {f"train/{k}": v for k, v in stats.items()}
    value = batch.get("state_value", None)
    if p.critic is not None and value is not None:
        metrics["train/explained_variance"] = explained_variance(real(value), real(batch.get("value_target")))
    legal, action = batch.get(ACTION_MASK_KEY, None), batch.get("action", None)
    if legal is not None and action is not None and legal.shape == action.shape:  # one-hot actions, an env's mask
        metrics["rollout/invalid_actions"] = float(real(((action != 0) & (legal == 0)).any(-1)).sum())
    return metrics


@contextlib.contextmanager
def _interrupts_kept():
    """Lets an interrupt (Ctrl-C, SIGTERM) leave the loop as itself. tensordict's
    ``TensorDictBase.__exit__`` answers one that arrives inside ``with params.to_module(net):``
    (pgtorchrl's and TorchRL's losses in functional mode) by returning a TensorDict, which Python
    turns into ``RuntimeError: Converting a tensordict to boolean value is not permitted``; the
    run would then end FAILED instead of KILLED."""
    try:
        yield
    except RuntimeError as err:
        if isinstance(err.__context__, KeyboardInterrupt):
            raise err.__context__ from None
        raise


def _progress(total: int):
    thread_locked_progress_bars()
    return tqdm(total=total, unit="frames", unit_scale=True, disable=not sys.stderr.isatty(), dynamic_ncols=True)


@dataclass
class LoopState:
    """The training loop's own state, between two iterations. All of it goes into every
    checkpoint (as its ``progress`` entry, a plain mapping of these fields), so a resumed run
    continues exactly where the checkpoint was taken."""

    frames: int = 0
    """Env frames collected so far (real steps only in a padded batch): every metric's step."""
    iteration: int = 0
    """Batches collected (one update each) so far."""
    next_eval: int | None = None
    """The frame count at which the next evaluation is due (``None``: evaluate only at the end)."""
    last_eval: float | None = None
    """``eval/return_mean`` of the latest evaluation (``None``: none yet)."""
    evaluated_at: int = -1
    """The frame count of the latest evaluation (-1: none yet)."""
    solved: bool = False
    """Whether the latest evaluation reached ``eval.target_return``."""
    elapsed: float = 0.0
    """Training seconds up to the latest checkpoint (a resumed run adds its earlier processes' time)."""
    next_checkpoint: int | None = None
    """The frame count at which the next checkpoint is due (``None``: only at the end)."""
    curve: list[dict[str, float]] = field(default_factory=list)
    """Every iteration's metrics so far, with ``iteration`` and ``frames``."""
    stopped: str | None = None
    """Why ``on_eval`` stopped training early (e.g. ``"pruned"``), or ``None``."""
    best: dict | None = None
    """The best-evaluated policy so far: ``frames``, ``eval_return``, the ``actor``'s state dict and
    the ``env_transforms``' state then (a copy each), or ``None`` before the first evaluation."""

    @classmethod
    def from_progress(cls, progress: dict) -> LoopState:
        """The state a checkpoint's ``progress`` holds (one written before ``stopped`` or ``best``
        existed lacks them)."""
        return cls(**progress)

    def progress(self) -> dict:
        """The state as a checkpoint holds it (the curve itself, not a copy: capturing is cheap)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def save_checkpoint(p: Pipeline, run: TrackedRun, collector, eval_env, state: LoopState, start: float) -> None:
    """Checks the weights (:func:`check_parameters`: no checkpoint holds a diverged network),
    books the training time so far and logs a checkpoint of the whole run to ``run``."""
    check_parameters(p, state.iteration, state.frames, run)
    state.elapsed = time.perf_counter() - start
    run.log_bytes(to_bytes(capture(p, collector, eval_env, state.progress())), checkpoint_path(state.frames))


def save_locally(
    err: TrackingError, p: Pipeline, run: TrackedRun, collector, eval_env, state: LoopState
) -> TrackingError:
    """The tracking failed mid-run: this process keeps the state and the metrics so far in
    :data:`RECOVERY_DIR` and returns the error to raise, which says how to continue."""
    folder = RECOVERY_DIR / (run.run_id or "unopened")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "curves.csv").write_text(curve_csv(state.curve))
    path = folder / Path(checkpoint_path(state.frames)).name
    check_parameters(p, state.iteration, state.frames)
    path.write_bytes(to_bytes(capture(p, collector, eval_env, state.progress())))
    how = f"pgtorchrl resume {run.run_id} --checkpoint {path}" if run.run_id else "train again"
    return TrackingError(
        f"{err}; training stopped at frame {state.frames}, its state and metrics are saved "
        f"in {folder}/; continue with: {how}"
    )


def log_history(run: TrackedRun, curve: list[dict[str, float]]) -> None:
    """Logs a resumed run's curve up to its checkpoint: the writer skips the points the run has
    logged already, so what only the checkpoint holds (the metrics of a run whose writer died
    before it had written them, saved in :data:`RECOVERY_DIR`) reaches MLflow, and the resumed
    run's history equals an uninterrupted run's."""
    for row in curve:
        run.log_metrics({k: v for k, v in row.items() if k not in ("iteration", "frames")}, step=int(row["frames"]))


def evaluate_now(spec: Spec, p: Pipeline, eval_env, state: LoopState, metrics: dict[str, float]) -> None:
    """Evaluates the current policy into ``metrics`` (``eval/return_mean``, ``eval/return_std``)
    and records it in ``state``: the frame count, and whether it reached ``eval.target_return``."""
    state.last_eval, state.evaluated_at = _log_eval(eval_env, p, metrics), state.frames
    state.solved = spec.eval.target_return is not None and state.last_eval >= spec.eval.target_return
    if state.best is None or state.last_eval > state.best["eval_return"]:
        state.best = {
            "frames": state.frames,
            "eval_return": state.last_eval,
            "actor": {k: v.detach().clone() for k, v in p.actor.state_dict().items()},
            "env_transforms": copy.deepcopy(transforms_state(p.env)),
        }


def log_final(spec: Spec, p: Pipeline, run: TrackedRun, state: LoopState) -> None:
    """What a run logs once it has trained: the ``solved`` (and ``stopped``) tags, the final
    weights and normalization statistics and the policy's MLflow Models (``tracking.log_models``:
    the final one, and the best-evaluated one where that is an earlier one), the training time,
    the learning curve's CSV and PNG."""
    run.set_tag("solved", str(state.solved))
    if state.stopped:
        run.set_tag("stopped", state.stopped)
    if spec.tracking.log_models:  # the parameters were checked by the end-state checkpoint
        spec_file = resolved_yaml(spec).encode()
        files = {SPEC: spec_file, ACTOR: run.log_state_dict(p.actor.state_dict(), ACTOR)}
        if p.critic is not None:
            run.log_state_dict(p.critic.state_dict(), CRITIC)
        transforms = transforms_state(p.env)
        if transforms:  # normalization statistics: part of the policy (load_actor reads them)
            files[ENV_TRANSFORMS] = to_bytes(transforms)
            run.log_bytes(files[ENV_TRANSFORMS], ENV_TRANSFORMS)
        io = deployable_io(p)
        plain = io.plain()  # the final and the best model share it
        registered, final = spec.tracking.register_model, state.last_eval  # a rule: registering evaluates
        register = (registered, final) if registered is not None and final is not None else None
        example = example_rows(io, p.env)
        run.log_policy_model(POLICY_MODEL, files, plain, example, register, state.frames)
        best = state.best
        if best is not None and best["frames"] != state.evaluated_at:  # else the final policy is the best
            best_files = {SPEC: spec_file, ACTOR: state_dict_bytes(best["actor"])}
            if best["env_transforms"]:
                best_files[ENV_TRANSFORMS] = to_bytes(best["env_transforms"])
            run.log_policy_model(BEST_POLICY_MODEL, best_files, plain, example, None, best["frames"])
            run.set_tag("model.policy_best.frames", str(best["frames"]))
    run.log_metrics({"time/train_seconds": state.elapsed}, step=state.frames)
    run.log_text(curve_csv(state.curve), "curves.csv")
    run.log_learning_curve(state.curve)


def deployable_io(p: Pipeline) -> PolicyIO:
    """What the policy's MLflow Model reads and writes (:func:`~pgtorchrl.modules.policy_io.policy_io`).
    A recurrent policy's state travels with each request, as in its exported files: ``is_init`` and
    the hidden states in, the next states out (a server keeps no client's state)."""
    inputs = observation_transforms(p.env)
    return policy_io(p.env, TensorDictSequential(inputs, p.actor) if inputs is not None else p.actor)


def train(
    spec: Spec,
    spec_text: str | None = None,
    pipeline: Pipeline | None = None,
    run: TrackedRun | None = None,
    checkpoint: dict | None = None,
    on_eval: Callable[[int, float], str | None] | None = None,
) -> TrainResult:
    """Builds the pipeline (unless given), trains it under an MLflow run and returns what it reached.

    Each iteration: collect a batch, write its advantages, update (:func:`update`, or
    :func:`update_per_step`), log its metrics (step = env frames), evaluate when
    ``eval.every_frames`` is due, stop once solved, pruned or at ``train.iterations``, checkpoint
    when ``tracking.checkpoint_every_frames`` is due. At the end: a last evaluation of the final
    policy, a checkpoint of the end state, and :func:`log_final`.

    Args:
        spec: a validated spec (:func:`pgtorchrl.pipeline.parse.load_spec`).
        spec_text: the spec file's text, logged as given.
        pipeline: components already built from ``spec``.
        run: a :class:`TrackedRun` whose writer was started early (the CLI does this).
        checkpoint: a checkpoint of an earlier run of ``spec`` to continue from
            (:func:`pgtorchrl.trainers.checkpoint.capture`; ``run`` then reopens that run).
        on_eval: called after each evaluation during training (``eval.every_frames``) with the
            frames so far and ``eval/return_mean``; a returned reason (e.g. ``"pruned"``) stops
            training there, the run ends as usual (FINISHED) with that reason as its ``stopped`` tag.
    """
    torch.set_num_threads(1)  # small MLPs on few cores: threads cost more than they save
    run = run or TrackedRun(spec, spec_text)
    run.start_writer()
    evaluating = spec.eval.episodes > 0
    try:
        p = pipeline or build_pipeline(spec)
        eval_env = p.make_eval_env() if evaluating else None
        collector = p.make_collector()
    except BaseException:
        run.discard()
        raise
    every = spec.eval.every_frames if evaluating else None
    save_every = spec.tracking.checkpoint_every_frames
    if checkpoint is None:
        state = LoopState(next_eval=every, next_checkpoint=save_every)
    else:
        state = LoopState.from_progress(restore(p, collector, eval_env, checkpoint))
    done = state.solved or state.iteration == spec.train.iterations
    step_fn = update_per_step if spec.train.per_step_updates else update
    start = time.perf_counter() - state.elapsed
    try:
        with run, _progress(spec.train.total_frames) as bar, _interrupts_kept():
            bar.update(state.frames)
            if checkpoint is not None:
                log_history(run, state.curve)
            tick = time.perf_counter()
            for batch in () if done else collector:
                raise_swallowed_interrupt()  # one that a library caught while this batch was collected
                state.iteration += 1
                mask = batch.get(MASK_KEY, None)
                collected = batch.numel() if mask is None else int(mask.sum())
                state.frames += collected
                p.advantage(batch)
                lr = anneal_lr(p, state.frames - collected) if spec.train.anneal_lr else None
                has_steps = mask is None or bool(batch.get(MASK_KEY).any())  # "drop" may empty a batch
                metrics = step_fn(p, batch, state.iteration, state.frames) if has_steps else {}
                metrics.update(batch_metrics(p, batch))
                metrics.update(episode_stats(batch))
                if lr is not None:
                    metrics["train/lr"] = lr
                now = time.perf_counter()
                metrics["time/fps"] = collected / (now - tick)
                metrics["time/elapsed_s"] = now - start
                if state.next_eval is not None and every is not None and state.frames >= state.next_eval:
                    state.next_eval += every
                    evaluate_now(spec, p, eval_env, state, metrics)
                    if on_eval is not None and not state.solved:
                        state.stopped = on_eval(state.frames, metrics["eval/return_mean"])
                # the curve first: if the writer has died, the state saved locally still holds this row
                state.curve.append({"iteration": state.iteration, "frames": state.frames, **metrics})
                run.log_metrics(metrics, step=state.frames)
                bar.update(collected)
                ret = metrics.get("rollout/episode_return", float("nan"))
                bar.set_postfix(ret=f"{ret:.1f}", fps=f"{metrics['time/fps']:.0f}")
                if state.solved or state.stopped or state.iteration == spec.train.iterations:
                    break
                if (
                    state.next_checkpoint is not None
                    and save_every is not None
                    and state.frames >= state.next_checkpoint
                ):
                    state.next_checkpoint = (state.frames // save_every + 1) * save_every
                    save_checkpoint(p, run, collector, eval_env, state, start)
                tick = time.perf_counter()  # evaluation, logging and checkpoints are not counted in time/fps
            if evaluating and state.evaluated_at != state.frames:  # always end on an evaluation of the final policy
                metrics = {}
                evaluate_now(spec, p, eval_env, state, metrics)
                run.log_metrics(metrics, step=state.frames)
            save_checkpoint(p, run, collector, eval_env, state, start)  # resuming after this only finishes the run
            collector.shutdown()
            log_final(spec, p, run, state)
    except TrackingError as err:  # the writer died or the store went away (seen mid-run, or only as the run closed)
        raise save_locally(err, p, run, collector, eval_env, state) from None  # keep what we have here
    return TrainResult(
        run.wait_opened(),  # the run was opened (and has ended): its id
        state.frames,
        state.iteration,
        state.last_eval,
        state.solved,
        state.elapsed,
        state.curve,
        state.stopped,
    )


def _log_eval(eval_env, p: Pipeline, metrics: dict[str, float]) -> float:
    p.sync_eval_env(eval_env)
    returns = evaluate(eval_env, p.actor, p.spec.eval.max_steps)
    metrics["eval/return_mean"] = returns.mean().item()
    metrics["eval/return_std"] = returns.std(unbiased=False).item()
    return metrics["eval/return_mean"]

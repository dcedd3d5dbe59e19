"""Sutton & Barto's boxed per-step updates on a whole-episode batch, by two solvers.

The boxes (REINFORCE, REINFORCE with baseline; Sutton & Barto 2018 Secs. 13.3-13.4) update the
weights at every time step ``t = 0, 1, ..., T-1`` of an episode, each step's gradient taken at
the weights the previous step left. With plain SGD on the step-``t`` loss :math:`L_t` that is
the recurrence

.. math::

    w_{t+1} = w_t - \\alpha \\nabla L_t(w_t), \\qquad\\text{i.e.}\\qquad
    w_t = w_0 - \\alpha \\sum_{s<t} \\nabla L_s(w_s).

``sequential`` runs it as written: one forward, backward and optimizer step per time step
(every optimizer, clipping, any loss reduction).

``fixed_point`` solves the same recurrence for all ``t`` at once, by fixed-point (Picard)
iteration on the weight trajectory :math:`W = (w_0, \\dots, w_{T-1})`: one *sweep* evaluates
every :math:`\\nabla L_t(w_t)` in a single batched forward and backward (the episodes' real
steps packed into one flat batch, each step with its own copy of the weights), then rebuilds
the trajectory with an exclusive cumulative sum per run. After ``k`` sweeps steps ``0..k-1`` are final, so ``T`` sweeps
give the sequential result exactly; with the textbook's small step sizes the iteration
contracts and a handful of sweeps suffice. It stops when a sweep moves no weight by more than
``1e-6`` of its magnitude (the size of the float32 rounding the sequential loop itself makes
over an episode), after ``T + 1`` sweeps at most, and hands a batch whose sweeps overflow to
``sequential``. It needs what makes the recurrence above the whole update: plain SGD (no
momentum, weight decay or clipping), ``loss.reduction: sum`` (per-step losses add up), a
categorical actor and a plain critic, and modules whose parameters are one row per run
(``independent_runs``) and accept one row of weights per observation. ``auto`` picks ``fixed_point``
where it applies.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch.func import functional_call

from pgtorchrl.modules.fast_policies import categorical_logits_net
from pgtorchrl.pipeline.contracts import fixed_point_unsupported, not_on_tensors
from pgtorchrl.trainers.fused_adam import adam_step
from pgtorchrl.trainers.grad_clip import clip_grad_norm

__all__ = ["per_step_updates"]

RTOL = 1e-6
"""A sweep that moves no weight by more than this fraction of its magnitude ends the iteration."""


def per_step_updates(p, batch) -> dict[str, torch.Tensor]:
    """The boxed updates of pipeline ``p`` on a whole-episode batch (every episode's step ``t``
    at once, in order), by ``p.spec.train.per_step_solver``. Returns each loss summed over the
    steps and, from the fixed-point solver, ``sweeps``."""
    totals = _fixed_point(p, batch) if _solver(p) == "fixed_point" else None
    return totals if totals is not None else _sequential(p, batch)


def _solver(p) -> str:
    solver = p.spec.train.per_step_solver
    if solver == "auto":
        return "sequential" if fixed_point_unsupported(p) else "fixed_point"
    return solver


def _columns(p, batch) -> dict:
    """The tensors the per-step losses read, by role."""
    lk, ak = p.loss.tensor_keys, p.advantage.tensor_keys
    net = categorical_logits_net(p.actor)
    if net is None:  # per_step_unsupported refuses such an actor before training
        raise ValueError("per-step updates on tensors need a categorical actor over a logits network")
    critic = p.critic
    return {
        "net_in": [batch.get(k) for k in net.in_keys],
        "critic_in": [batch.get(k) for k in critic.in_keys] if critic is not None else None,
        "action": batch.get(lk.action),
        "advantage": batch.get(lk.advantage),
        "mask": batch.get(ak.mask),
        "value_target": batch.get(lk.value_target) if critic is not None else None,
        "step_count": batch.get(ak.step_count) if p.advantage.refreshes and p.advantage.gamma_t_factor else None,
    }


def _step_losses(p, actor_fn, critic_fn, c: dict) -> dict[str, torch.Tensor]:
    """``p.loss``'s losses of the steps in ``c`` (one time column, or the packed real steps with
    one row of weights each), the critic baseline refreshed with the critic's current weights (the box's
    delta = G_t - v(S_t, w))."""
    logits = actor_fn(*c["net_in"])
    value = critic_fn(*c["critic_in"]) if critic_fn is not None else None
    advantage = c["advantage"]
    if p.advantage.refreshes:
        advantage = p.advantage.refreshed(c["value_target"], value, c["step_count"], c["mask"])
    return p.loss.step_losses(
        logits, c["action"], advantage, c["mask"], value, c["value_target"], action_index=c.get("action_index")
    )


def _sequential(p, batch) -> dict[str, torch.Tensor]:
    """The box's inner loop: for t = 0..T-1 one step of every optimizer on every episode's step
    t. Returns each loss summed over the steps."""
    max_norm = p.spec.train.max_grad_norm
    optimizers = [(p.actor_optim, p.actor)] + ([(p.critic_optim, p.critic)] if p.critic_optim else [])
    params = [prm for optim, _ in optimizers for group in optim.param_groups for prm in group["params"]]
    history: dict[str, list[torch.Tensor]] = {}
    for losses in _tensor_step_losses(p, batch) or (p.loss(p.advantage.refresh(s)) for s in batch.unbind(-1)):
        terms = [value for key, value in losses.items() if key.startswith("loss_")]
        for prm in params:  # zero_grad(set_to_none=True), minus its profiler hook: this runs per step
            prm.grad = None
        (terms[0] if len(terms) == 1 else sum(terms)).backward()
        for optim, module in optimizers:
            if max_norm is not None:
                clip_grad_norm(module.parameters(), max_norm)
            adam_step(optim)
        for key, value in losses.items():
            if key.startswith("loss_"):
                history.setdefault(key, []).append(value.detach())
    return {k: torch.stack(v).sum() for k, v in history.items()}


def _tensor_step_losses(p, batch):
    """The per-step losses of ``batch`` on plain tensors, one time step at a time (a generator:
    each step sees the weights the previous update left), or ``None`` where the actor is not a
    categorical policy over a plain network or the critic not a plain ``TensorDictModule``. The
    same modules' networks and maths as ``p.loss(p.advantage.refresh(step))``, minus the
    TensorDict bookkeeping, which costs more than the maths at one update per step."""
    if not_on_tensors(p) is not None:
        return None
    net, critic = categorical_logits_net(p.actor), p.critic
    columns = _columns(p, batch)
    time_dim = batch.batch_dims - 1

    def at(t: int, value):
        if value is None:
            return None
        return [v.select(time_dim, t) for v in value] if isinstance(value, list) else value.select(time_dim, t)

    critic_fn = critic.module if critic is not None else None
    return (
        _step_losses(p, net.module, critic_fn, {k: at(t, v) for k, v in columns.items()})
        for t in range(batch.shape[-1])
    )


def _packed(columns: dict, steps: torch.Tensor) -> dict:
    """``columns`` ``[runs, T, ...]`` at the flat indices ``steps`` only, as one batch ``[N, ...]``."""

    def pack(value):
        if value is None:
            return None
        if isinstance(value, list):
            return [pack(v) for v in value]
        return value.reshape(-1, *value.shape[2:]).index_select(0, steps)

    packed = {k: pack(v) for k, v in columns.items()}
    packed["mask"] = None  # every packed step is real
    packed["action_index"] = packed["action"].argmax(-1, keepdim=True)  # once, not once per sweep
    return packed


def _fixed_point(p, batch) -> dict[str, torch.Tensor] | None:
    """The fixed-point solver (module docstring). Returns each loss summed over the steps and
    ``sweeps``, or ``None`` when a sweep overflowed (the caller then runs ``sequential``).

    Only real steps are computed: they are packed into one flat batch of ``N`` steps, run by
    run and in time order, each with its own weights (``[N, ...]``), so padding after the
    shorter episodes (most of a lockstep batch) costs nothing. Within a run, the weights'
    exclusive sum of gradients is a cumulative sum less its value where the run starts."""
    if batch.batch_dims != 2:  # one run per batch row
        return None
    net = categorical_logits_net(p.actor)
    if net is None:  # fixed_point_unsupported refuses such an actor before training
        return None
    modules = {"actor": net.module}
    if p.critic is not None:
        modules["critic"] = p.critic.module
    lr = {
        id(prm): group["lr"]
        for optim in (p.actor_optim, p.critic_optim)
        if optim is not None
        for group in optim.param_groups
        for prm in group["params"]
    }
    named = [(key, name, prm) for key, module in modules.items() for name, prm in module.named_parameters()]
    columns = _columns(p, batch)
    valid = columns["mask"] if columns["mask"] is not None else torch.ones(batch.shape, dtype=torch.bool)
    steps = valid.reshape(-1).nonzero().squeeze(-1)  # the real steps, run by run, in time order
    run = steps // batch.shape[-1]  # each real step's run
    lengths = valid.sum(-1)
    run_start = (lengths.cumsum(0) - lengths)[run]  # where each real step's run starts in the flat batch
    columns = _packed(columns, steps)
    start = [prm.detach().double()[run] for _, _, prm in named]  # w_0, per real step
    rates = [lr[id(prm)] for _, _, prm in named]
    grads = [torch.zeros_like(w) for w in start]  # g_t of each real step, float64
    params: dict[str, dict[str, torch.Tensor]] = {key: {} for key in modules}  # this sweep's weights

    def call(key: str):
        return lambda *x: functional_call(modules[key], params[key], x)

    def before(g: torch.Tensor) -> torch.Tensor:
        """sum_{s<t} g_s within each run, at every real step t."""
        exclusive = g.cumsum(0) - g
        return exclusive - exclusive.index_select(0, run_start)

    critic_fn = call("critic") if "critic" in modules else None
    previous = None
    for sweep in range(1, batch.shape[-1] + 2):  # noqa: B007 (the count is read after the loop)
        # w_t = w_0 - alpha * sum_{s<t} g_s, accumulated in float64
        stacked = [(w0 - rate * before(g)).float() for w0, rate, g in zip(start, rates, grads)]
        leaves = [w.requires_grad_(True) for w in stacked]
        for (key, name, _), leaf in zip(named, leaves):
            params[key][name] = leaf
        losses = _step_losses(p, call("actor"), critic_fn, columns)
        total = cast(torch.Tensor, sum(v for k, v in losses.items() if k.startswith("loss_")))
        grads = [step_grad.double() for step_grad in torch.autograd.grad(total, leaves)]
        # per weight tensor: its largest magnitude and its largest move since the last sweep
        sizes = torch.stack([w.detach().abs().max() for w in stacked]).tolist()
        if not all(math.isfinite(x) for x in sizes):
            return None  # the iteration overflowed: the sequential loop decides
        if previous is not None:
            moves = torch.stack([(w.detach() - v).abs().max() for w, v in zip(stacked, previous)]).tolist()
            if all(move <= RTOL * max(1.0, size) for move, size in zip(moves, sizes)):
                break
        previous = [w.detach() for w in stacked]
    with torch.no_grad():  # w_T = w_0 - alpha * sum_t g_t, per run
        for (_, _, prm), rate, g in zip(named, rates, grads):
            total_step = torch.zeros(prm.shape, dtype=torch.float64, device=g.device).index_add_(0, run, g)
            prm.copy_(prm.double() - rate * total_step)
    totals = {k: v.detach() for k, v in losses.items() if k.startswith("loss_")}
    totals["sweeps"] = torch.tensor(sweep)
    return totals

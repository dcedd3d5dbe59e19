"""PPO's passes over a batch (``train.epochs`` x ``train.minibatches``): every collected step once
per epoch, in the minibatches of a fresh permutation; the learning rate annealed over them."""

from pathlib import Path

import torch

import pgtorchrl.trainers.trainer as trainer
from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec

PPO = Path(__file__).resolve().parents[1] / "pipelines" / "ppo_cartpole.yaml"


def test_each_epoch_visits_every_step_once_in_shuffled_minibatches(monkeypatch):
    spec = load_spec(
        PPO,
        [
            "train.total_frames=1000",
            "train.epochs=3",
            "train.minibatches=4",
            "collector.frames_per_batch=250",
            "env.num_envs=2",
        ],
    )
    p = build_pipeline(spec)
    batch = next(iter(p.make_collector()))
    p.advantage(batch)
    steps = batch.reshape(-1)
    steps.set("step_id", torch.arange(steps.numel()))  # which collected step a minibatch row is
    seen, real = [], trainer.gradient_step

    def recording(p, minibatch, iteration, frames, statistics=True, **kwargs):
        seen.append(minibatch.get("step_id"))
        torch.testing.assert_close(minibatch.get("observation"), steps.get("observation")[minibatch.get("step_id")])
        return real(p, minibatch, iteration, frames, statistics, **kwargs)

    monkeypatch.setattr(trainer, "gradient_step", recording)
    metrics = trainer.update(p, steps, 1, steps.numel())
    assert metrics["train/epochs"] == 3.0
    assert [len(ids) for ids in seen] == [63, 63, 63, 61] * 3  # torch.chunk's split of 250 steps into 4
    epochs = [torch.cat(seen[i : i + 4]) for i in (0, 4, 8)]
    for ids in epochs:
        assert torch.equal(ids.sort().values, torch.arange(250))  # every step exactly once per epoch
    assert not torch.equal(epochs[0], epochs[1])  # each epoch shuffles anew


def test_anneal_lr_steps_each_update_at_its_share_of_the_frames_left(store):
    """CleanRL's annealing: update k (1-based) of a run of K uses lr * (1 - (k - 1) / K) in both
    optimizers, logged as train/lr; without anneal_lr the rate stays."""
    from mlflow.tracking import MlflowClient

    seen = []
    real = trainer.update

    def update(p, batch, iteration, frames):
        seen.append((p.actor_optim.param_groups[0]["lr"], p.critic_optim.param_groups[0]["lr"]))
        return real(p, batch, iteration, frames)

    spec = load_spec(
        PPO,
        ["train.total_frames=4096", "train.anneal_lr=true", "eval.episodes=0", "critic_optim.lr=1.0e-3"],
    )
    trainer.update = update
    try:
        result = trainer.train(spec, pipeline=build_pipeline(spec))
    finally:
        trainer.update = real
    lr, critic_lr = spec.optim.lr, spec.critic_optim.lr
    assert seen == [(lr * (1 - k / 4), critic_lr * (1 - k / 4)) for k in range(4)]
    logged = MlflowClient(store).get_metric_history(result.run_id, "train/lr")
    assert [(m.step, m.value) for m in sorted(logged, key=lambda m: m.step)] == [
        (1024 * (k + 1), lr * (1 - k / 4)) for k in range(4)
    ]


def test_minibatches_carry_only_the_keys_the_analytic_loss_reads_and_update_as_with_every_key(monkeypatch):
    """PPO on its gradients by hand gathers only ``ClipPPOLoss.minibatch_keys`` for its minibatches
    and takes its gradients by hand without re-checking each minibatch (``by_hand``): the same
    parameters after an update as gathering every key through ``forward_backward``."""
    spec = load_spec(
        PPO.parent / "mujoco" / "ppo_halfcheetah.yaml",
        ["collector.frames_per_batch=256", "train.epochs=2", "train.minibatches=4", "train.total_frames=256"],
    )
    results, seen = [], []
    real = trainer.gradient_step

    def recording(p, minibatch, iteration, frames, statistics=True, by_hand=False):
        seen[-1].add((frozenset(minibatch.keys(True, True)), by_hand))
        return real(p, minibatch, iteration, frames, statistics, by_hand)

    monkeypatch.setattr(trainer, "gradient_step", recording)
    for every_key in (False, True):
        if every_key:
            monkeypatch.setattr(trainer, "_minibatch_keys", lambda p, steps: None)
        torch.manual_seed(0)
        p = build_pipeline(spec)
        batch = next(iter(p.make_collector()))
        p.advantage(batch)
        seen.append(set())
        torch.manual_seed(1)
        trainer.update(p, batch, 1, batch.numel())
        results.append([x.detach().clone() for x in [*p.actor_params, *p.critic_params]])
    keys = p.loss.minibatch_keys(trainer._real_steps(batch))
    assert seen[0] == {(frozenset(keys), True)}
    assert len(seen[1]) == 1 and len(next(iter(seen[1]))[0]) > len(keys) and next(iter(seen[1]))[1] is False
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))

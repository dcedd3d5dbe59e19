"""Policies with memory (pgtorchrl.modules.recurrent): the training pass sees what collection saw."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchrl.envs import ExplorationType
from torchrl.modules import LSTMModule, set_recurrent_mode

from pgtorchrl import load_spec
from pgtorchrl.collectors.rollout import first_episodes
from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.trainers.trainer import _sequences

ROOT = Path(__file__).resolve().parents[1]
LSTM_PIPELINE = ROOT / "pipelines" / "ppo_lstm_cartpole_novel.yaml"
SMALL = ["env.num_envs=4", "collector.frames_per_batch=256", "actor.hidden_size=16", "critic.hidden_size=16"]


def collected(overrides=(), batches: int = 2):
    """A pipeline of the LSTM spec and its ``batches``-th collected batch (the hidden state at
    the rows' start then comes from the previous batch)."""
    spec = load_spec(LSTM_PIPELINE, [*SMALL, *overrides])
    p = build_pipeline(spec)
    collector = p.make_collector()
    stream = iter(collector)
    for _ in range(batches):
        batch = next(stream)
    collector.shutdown()
    return p, batch


def training_log_prob(p, batch):
    with torch.no_grad(), set_recurrent_mode(True):
        return p.actor.get_dist(batch.copy()).log_prob(batch.get("action"))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_pass_log_probs_equal_the_collected_ones(cell):
    """Equal to float32 rounding (at most a few 1e-8: the heads' matrix products over more rows
    round differently); a state handled wrongly moves them by 1e-3 and more (the next test)."""
    p, batch = collected([f"actor.name={cell}", f"critic.name={cell}", "actor.python_based=true"])
    starts = batch.get("is_init").squeeze(-1)
    assert starts[:, 1:].sum() >= 4, "episodes start inside the rows (the case that goes wrong)"
    assert batch.get("recurrent_state_h" if cell == "lstm" else "recurrent_state")[:, 0].abs().sum() > 0
    for segments in (batch, _sequences(batch, 16), _sequences(batch, 8)):
        diff = (training_log_prob(p, segments) - segments.get("action_log_prob")).abs().max()
        assert diff <= 2e-7


def test_nn_lstm_sequence_pass_equals_collection_up_to_rounding():
    p, batch = collected()
    diff = (training_log_prob(p, batch) - batch.get("action_log_prob")).abs().max()
    assert diff < 1e-5
    # a pass that ignores the stored state (zeros at the rows' start) is visibly different
    zeroed = batch.clone()
    zeroed.set("recurrent_state_h", torch.zeros_like(zeroed.get("recurrent_state_h")))
    zeroed.set("recurrent_state_c", torch.zeros_like(zeroed.get("recurrent_state_c")))
    assert (training_log_prob(p, zeroed) - batch.get("action_log_prob")).abs().max() > 1e-3


def test_hidden_states_are_zero_at_every_episode_start_in_collection_and_evaluation():
    p, batch = collected()
    for key in ("recurrent_state_h", "recurrent_state_c", "critic_recurrent_state_h", "critic_recurrent_state_c"):
        starts = batch.get("is_init").squeeze(-1)
        assert torch.count_nonzero(batch.get(key)[starts]) == 0, key
        assert torch.count_nonzero(batch.get(key)[~starts]) > 0, key  # carried within episodes
    env = p.make_eval_env()
    episodes = first_episodes(env, p.actor, max_steps=600, exploration=ExplorationType.DETERMINISTIC)
    starts = episodes.get("is_init").squeeze(-1)
    assert starts[:, 0].all()
    assert torch.count_nonzero(episodes.get("recurrent_state_h")[starts]) == 0


def unrolled_log_prob(lstm: LSTMModule, head, batch) -> torch.Tensor:
    """The reference: the LSTM cell's equations stepped by hand, from the stored state at each
    row's start, reset to zero where ``is_init``."""
    rnn = lstm.lstm
    w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    h = batch.get("recurrent_state_h")[:, 0, 0]
    c = batch.get("recurrent_state_c")[:, 0, 0]
    obs, starts = batch.get("observation"), batch.get("is_init").squeeze(-1)
    out = []
    for t in range(obs.shape[1]):
        reset = starts[:, t : t + 1]
        h, c = torch.where(reset, 0.0, h), torch.where(reset, 0.0, c)
        i, f, g, o = (obs[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        out.append(h)
    logits = head(torch.stack(out, 1))
    return (logits.log_softmax(-1) * batch.get("action")).sum(-1)


def test_loss_gradient_equals_an_explicitly_unrolled_loop():
    p, batch = collected(["env.transforms=[]"])  # raw observations: the reference reads them as they are
    lstm = next(m for m in p.actor.modules() if isinstance(m, LSTMModule))
    head = next(m for m in p.actor.modules() if type(m).__name__ == "MLP")
    advantage = torch.randn(batch.shape)
    with set_recurrent_mode(True):
        log_prob = p.actor.get_dist(batch.copy()).log_prob(batch.get("action"))
    params = list(p.actor.parameters())
    grads = torch.autograd.grad(-(log_prob * advantage).mean(), params)
    reference = torch.autograd.grad(-(unrolled_log_prob(lstm, head, batch) * advantage).mean(), params)
    for got, want in zip(grads, reference):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in grads[:4])  # the recurrent weights do get a gradient


@pytest.mark.parametrize(
    "overrides, path, message",
    [
        (["collector={name: episodes}"], "collector", "fixed-frame batches"),
        (["collector.trajs_per_batch=4"], "collector", "fixed-frame batches"),
        (["train.sequence_length=24"], "train.sequence_length", "does not divide the 64 steps"),
    ],
)
def test_specs_a_recurrent_pipeline_cannot_train_are_refused(overrides, path, message):
    with pytest.raises(Exception) as err:
        load_spec(LSTM_PIPELINE, [*SMALL, *overrides])
    assert path in str(err.value) and message in str(err.value)


def test_sequence_length_without_memory_is_refused():
    with pytest.raises(Exception, match="train.sequence_length: only recurrent"):
        load_spec(ROOT / "pipelines" / "ppo_cartpole_novel.yaml", ["train.sequence_length=8"])


def test_memory_task_observation_shows_the_cue_only_at_the_start():
    import gymnasium as gym

    env = gym.make("pgtorchrl/MemoryCue-v0", length=4)
    obs, _ = env.reset(seed=3)
    cue = int(obs[:2].argmax())
    seen = [env.step(0)[0] for _ in range(4)]
    assert all(o[:2].sum() == 0 for o in seen) and seen[-1][2] == 1.0
    _, reward, terminated, *_ = env.step(1 - cue)
    assert reward == -1.0 and terminated


def test_load_actor_stepped_in_a_plain_gymnasium_loop_acts_as_the_trained_actor(store):
    """The loaded recurrent actor carries its own state (CarriedMemory): stepped one observation
    at a time through two episodes (reset() between them), its action logits are those of the
    trained actor run over each episode's whole sequence from zero states."""
    import gymnasium as gym
    from tensordict import TensorDict
    from torchrl.envs import set_exploration_type

    from pgtorchrl import load_actor
    from pgtorchrl.envs.gym import observation_transforms
    from pgtorchrl.trainers.trainer import train

    spec = load_spec(LSTM_PIPELINE, [*SMALL, "train.total_frames=1024", "eval.episodes=1", "eval.every_frames=null"])
    p = build_pipeline(spec)
    result = train(spec, pipeline=p)
    loaded = load_actor(result.run_id)
    norm = observation_transforms(p.env)
    env = gym.make("pgtorchrl/CartPoleNoVel-v1")
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        observations, actions = [], []
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            for _ in range(30):
                observations.append(torch.as_tensor(obs))
                out = loaded(TensorDict(observation=observations[-1]))
                action = out["action"]
                actions.append(out["logits"])
                obs, _, terminated, truncated, _ = env.step(int(action.argmax()))
                if terminated or truncated:
                    break
            loaded.reset()
            steps = len(observations)
            seq = TensorDict(observation=torch.stack(observations), batch_size=[steps])
            seq = norm(seq)
            seq.set("is_init", torch.arange(steps).unsqueeze(-1) == 0)
            for key, shape in loaded.memory.items():
                seq.set(key, torch.zeros(steps, *shape))
            with set_recurrent_mode(True):
                reference = p.actor(seq)["logits"]
        torch.testing.assert_close(torch.stack(actions), reference, rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["vpg_cartpole", "trpo_cartpole"])
def test_vpg_and_trpo_train_recurrent_networks_on_sequences(store, pipeline):
    """VPG's critic steps and TRPO's Fisher-vector products and line search run the LSTMs over
    sequences: the run trains, and its KL and losses are finite."""
    from pgtorchrl.trainers.trainer import train

    overrides = [
        "env={name: gym, env_id: pgtorchrl/CartPoleNoVel-v1, num_envs: 4}",
        "actor={name: lstm, hidden_size: 16}",
        "critic={name: lstm, hidden_size: 16}",
        "collector={name: sync, frames_per_batch: 256}",
        "train.total_frames=768",
        "eval.episodes=2",
        "eval.every_frames=null",
        "eval.target_return=null",
    ]
    result = train(load_spec(ROOT / "pipelines" / f"{pipeline}.yaml", overrides))
    assert result.iterations == 3
    last = result.curve[-1]
    assert all(torch.isfinite(torch.tensor(v)) for k, v in last.items() if k.startswith("train/"))
    if pipeline == "trpo_cartpole":
        assert 0 < last["train/kl"] <= 0.03  # max_kl: the trust region held over the recurrent policy

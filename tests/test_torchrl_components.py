"""Open to TorchRL both ways: TorchRL's losses, estimators and transforms in a spec, components
checked against their contracts, ReinforceLoss as a full LossModule, key-aware models, custom
gymnasium envs, and normalization statistics that travel with the policy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Composite, OneHot, Unbounded
from torchrl.envs import ExplorationType, set_exploration_type
from torchrl.objectives import A2CLoss, ValueEstimators
from torchrl.objectives.value import GAE as TorchRLGAE

from pgtorchrl.modules.models import make_actor, make_critic
from pgtorchrl.objectives.reinforce import ReinforceLoss

ROOT = Path(__file__).resolve().parents[1]
VPG = ROOT / "pipelines" / "vpg_cartpole.yaml"


def cli(tmp_path, *args, files: dict[str, str] | None = None):
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    return subprocess.run(
        [sys.executable, "-m", "pgtorchrl", *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )


# --- ReinforceLoss honours the LossModule contract: one list of generic calls, on both losses ----------
def _nets():
    torch.manual_seed(0)
    obs = Composite(observation=Unbounded(3))
    return make_actor(obs, OneHot(2), hidden_sizes=[8]), make_critic(obs, hidden_sizes=[8])


def _batch(n=6):
    torch.manual_seed(1)
    done = torch.zeros(1, n, 1, dtype=torch.bool)
    done[0, -1] = True
    return TensorDict(
        {
            "observation": torch.randn(1, n, 3),
            "action": torch.nn.functional.one_hot(torch.randint(2, (1, n)), 2),
            "next": {
                "observation": torch.randn(1, n, 3),
                "reward": torch.ones(1, n, 1),
                "done": done,
                "terminated": done,
            },
        },
        [1, n],
    )


def generic_loss_module_calls(make_loss):
    """What generic TorchRL code does with any LossModule; returns what it saw."""
    actor, critic = _nets()
    loss = make_loss(actor, critic)
    seen = {"default_value_estimator": loss.default_value_estimator, "functional": loss.functional}
    loss.make_value_estimator(ValueEstimators.GAE, gamma=0.9, lmbda=0.8)
    seen["estimator"] = type(loss.value_estimator)
    out = loss(_batch())  # no advantage in the batch: the loss's own estimator writes it
    seen["scalar_terms"] = all(v.ndim == 0 for k, v in out.items() if k.startswith("loss_"))
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    seen["actor_grads"] = all(p.grad is not None for p in actor.parameters())
    seen["params"] = sorted(k for k in ("actor_network_params", "critic_network_params") if hasattr(loss, k))
    seen["stateful"] = type(loss.get_stateful_net("actor_network")).__name__
    loss.make_value_estimator(ValueEstimators.TD0, gamma=0.9)
    loss.set_keys(advantage="adv")  # read from the batch under its new name
    batch = _batch()
    batch["adv"], batch["value_target"] = torch.zeros(1, 6, 1), torch.zeros(1, 6, 1)
    seen["renamed_key_read"] = all(v == 0 for k, v in loss(batch).items() if k in ("loss_actor", "loss_objective"))
    loss.select_out_keys("loss_critic")
    seen["selected"] = sorted(loss(_batch()).keys())
    unreduced = make_loss(actor, critic, reduction="none")
    seen["none_shape"] = tuple(unreduced(_batch()).get("loss_critic").shape)
    return seen


def test_the_generic_loss_module_calls_pass_on_torchrl_a2c_and_on_reinforce_loss():
    theirs = generic_loss_module_calls(lambda a, c, **kw: A2CLoss(a, c, **kw))
    ours = generic_loss_module_calls(lambda a, c, **kw: ReinforceLoss(a, c, **kw))
    assert ours == theirs
    assert ours["estimator"] is TorchRLGAE and ours["functional"] is True
    assert ours["params"] == ["actor_network_params", "critic_network_params"]
    assert ours["renamed_key_read"] and ours["scalar_terms"] and ours["actor_grads"]
    assert ours["selected"] == ["loss_critic"] and ours["none_shape"] == (1, 6)


def test_reinforce_loss_takes_torchrl_spellings_and_its_params_are_the_actors():
    actor, critic = _nets()
    loss = ReinforceLoss(actor, critic, entropy_coeff=0.1, critic_coeff=0.5)
    assert {id(p) for p in loss.parameters()} == {id(p) for p in [*actor.parameters(), *critic.parameters()]}
    with pytest.raises(TypeError):
        ReinforceLoss(actor, critic, entropy_coef=0.1)  # the old spelling is gone, as in TorchRL
    with pytest.raises(ValueError, match="no critic"):
        ReinforceLoss(actor).make_value_estimator()


# --- contracts ---------------------------------------------------------------------------------------
BARE_LOSS = '''
import torch
from pgtorchrl.components import LOSSES

class BareLoss(torch.nn.Module):
    """A loss without in_keys/out_keys."""
    def forward(self, td):
        return {}

def bare(actor, critic):
    return BareLoss()

def no_critic_term(actor, critic):
    from torchrl.objectives import A2CLoss
    loss = A2CLoss(actor, critic)
    loss.select_out_keys("loss_objective")
    return loss
'''


def test_a_plugin_loss_that_misses_the_contract_is_a_one_line_error(tmp_path):
    common = ("plugins=[my_losses]", "train.total_frames=256")
    out = cli(tmp_path, str(VPG), *common, 'loss={name: "my_losses:bare"}', files={"my_losses.py": BARE_LOSS})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: loss: 'my_losses:bare' (BareLoss) lacks in_keys, out_keys: a loss needs in_keys, "
        "out_keys naming its loss_* terms, and forward(tensordict) -> TensorDict (e.g. a torchrl.objectives.LossModule)"
    ]
    out = cli(tmp_path, "validate", str(VPG), *common, 'loss={name: "my_losses:no_critic_term"}')
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: train.value_steps: loss 'my_losses:no_critic_term' has no critic term "
        "(loss_critic or loss_value in its out_keys ['loss_objective']) for the extra critic steps: set value_steps: 1"
    ]
    if (tmp_path / "mlflow.db").exists():  # no run was opened
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_per_step_updates_with_a_torchrl_loss_is_a_declared_capability_error(tmp_path):
    out = cli(
        tmp_path,
        "validate",
        str(ROOT / "pipelines" / "short_corridor_reinforce.yaml"),
        "sweep=null",
        "critic={name: scalar}",
        "loss={name: torchrl.A2CLoss}",
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .endswith("train.per_step_updates: needs pgtorchrl's loss 'reinforce' (got A2CLoss)")
    )


# --- key-aware models ------------------------------------------------------------------------------------
def test_actor_and_critic_read_the_observation_keys_they_are_given():
    spec = Composite(obs=Unbounded((5, 4)), pos=Unbounded((5, 2)), shape=(5,))  # a batched env's spec
    actor = make_actor(spec, OneHot(3), in_keys=["obs", "pos"], hidden_sizes=[8])
    critic = make_critic(spec, in_keys=["obs"], hidden_sizes=[8])
    td = TensorDict({"obs": torch.randn(5, 4), "pos": torch.randn(5, 2)}, [5])
    assert actor(td.clone())["action"].shape == (5, 3)
    assert critic(td.clone())["state_value"].shape == (5, 1)
    assert actor.in_keys == ["obs", "pos"] and critic.in_keys == ["obs"]


@pytest.mark.parametrize(
    "spec, keys, message",
    [
        (
            Composite(obs=Unbounded(4)),
            ["observation"],
            "observation key 'observation' is not in the env's observation_spec (it has: obs)",
        ),
        (
            Composite(grid=Unbounded((3, 8))),
            ["grid"],
            "observation key 'grid' has shape (3, 8): the models take flat vectors, discrete values and images",
        ),
        (
            Composite(state=Composite(a=Unbounded(2))),
            ["state"],
            "observation key 'state' has a Composite of several entries",
        ),
    ],
)
def test_a_spec_the_models_cannot_read_is_a_one_line_error_at_construction(spec, keys, message):
    for build in (lambda: make_actor(spec, OneHot(2), in_keys=keys), lambda: make_critic(spec, in_keys=keys)):
        with pytest.raises(ValueError) as err:
            build()
        assert str(err.value).startswith(message) and "\n" not in str(err.value)


# --- custom gymnasium envs from YAML ------------------------------------------------------------------------
MY_ENVS = '''
import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right along a corridor of `length` cells: reward 1 at the end, -0.01 per step."""

    def __init__(self, length=5):
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.pos = max(0, self.pos + (1 if action == 1 else -1))
        done = self.pos >= self.length
        obs = np.array([self.pos / self.length], np.float32)
        return obs, (1.0 if done else -0.01), done, False, {}


gym.register("Corridor-v0", entry_point=Corridor, max_episode_steps=50)
'''


@pytest.mark.slow  # over 15 s on this 2-core machine: CI's slow run
def test_a_custom_gymnasium_env_trains_from_yaml(tmp_path):
    files = {"my_envs.py": MY_ENVS}
    short = ("train.total_frames=2048", "eval.every_frames=1024", "eval.target_return=0.9")
    for env_id in ("my_envs:Corridor-v0", "Corridor-v0"):  # gymnasium's module:EnvId, or an id a plugin registers
        out = cli(
            tmp_path,
            str(VPG),
            "plugins=[my_envs]",
            f"env.env_id={env_id}",
            "env.make_kwargs={length: 3}",
            *short,
            files=files,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("solved: eval/return_mean=1.0"), (
            out.stdout
        )  # 3 steps right: 0.98, printed to 1 decimal
    unlisted = cli(tmp_path, "validate", str(VPG), "env.env_id=my_envs:Corridor-v0")
    assert unlisted.returncode == 2
    assert unlisted.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: env.env_id: 'my_envs:Corridor-v0' imports code from 'my_envs', which the spec does "
        "not trust: add it under plugins: [my_envs] (its import registers the env)"
    ]
    unknown = cli(tmp_path, "validate", str(VPG), "env.env_id=Corridor-v0")
    assert unknown.returncode == 2
    assert "for your own env, register it (gymnasium.register) in a module listed under plugins:" in unknown.stderr


def test_transforms_are_a_field_of_the_gym_env_and_the_error_says_so(tmp_path):
    out = cli(tmp_path, "validate", str(VPG), "env.transforms=[{name: torchrl.VecNormV2}]")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {VPG}: env.transforms: unknown key for env 'gym_native'; 'atari', 'gym' accept it "
        "(accepted: name, env_id, num_envs, make_kwargs, normalize_observations, clip_observations, normalize_rewards, "
        "reward_gamma, clip_rewards)"
    ]


# --- TorchRL's components train CartPole to the target ----------------------------------------------------------
TORCHRL_COMBOS = {
    "a2c_loss_and_gae": [
        "advantage={name: torchrl.GAE, lmbda: 0.95, average_gae: true}",
        "loss={name: torchrl.A2CLoss, entropy_coeff: 0.0, loss_critic_type: l2}",
    ],
    "td_lambda_estimator": ["advantage={name: torchrl.TDLambdaEstimator, lmbda: 0.95}"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHRL_COMBOS)
def test_torchrl_losses_and_estimators_solve_cartpole(tmp_path, name):
    out = cli(tmp_path, str(VPG), *TORCHRL_COMBOS[name])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("solved: eval/return_mean=500.0"), out.stdout


# --- normalization statistics are part of the policy ----------------------------------------------------------
NORMALIZED = [
    "env.name=gym",
    "collector.name=sync",
    "train.total_frames=2048",
    "eval.every_frames=1024",
    "eval.episodes=3",
    "eval.target_return=null",
    "env.transforms=[{name: torchrl.VecNormV2, decay: 0.99}, {name: torchrl.RewardScaling, scale: 0.01}]",
]


def test_normalization_statistics_travel_with_the_policy_to_checkpoints_eval_and_load_actor(store):
    from pgtorchrl.envs.gym import user_transforms
    from pgtorchrl.experiments.loading import evaluate_run, latest_checkpoint, load_actor
    from pgtorchrl.pipeline.build import build_pipeline, eval_env
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.evaluation import evaluate
    from pgtorchrl.trainers.trainer import train

    spec = load_spec(VPG, NORMALIZED)
    p = build_pipeline(spec)
    result = train(spec, pipeline=p)
    vecnorm = user_transforms(p.env)[0]
    assert vecnorm._count["observation"].item() > 2048 / 8  # the statistics moved in training

    checkpoint = latest_checkpoint(result.run_id)  # the end state's checkpoint holds them
    assert torch.equal(
        checkpoint["env_transforms"]["0"]["_extra_state"]["loc.-|-.observation"], vecnorm._loc["observation"]
    )

    raw = TensorDict({"observation": torch.randn(16, 4) * 2}, [16])
    loaded = load_actor(result.run_id)  # acts on raw observations as the trained policy did through its env
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        expected = p.actor(vecnorm._stateful_norm(raw.clone()))  # TorchRL's own env-side normalization
        got = loaded(raw.clone())
    torch.testing.assert_close(got["logits"], expected["logits"])
    assert torch.equal(got["action"], expected["action"])

    reference = eval_env(spec, 3)
    p.sync_eval_env(reference)
    assert torch.equal(evaluate_run(result.run_id, episodes=3), evaluate(reference, p.actor))  # pgtorchrl eval


# --- the guide's TorchRL example -----------------------------------------------------------------------------------
EXAMPLE = ROOT / "examples" / "vpg_cartpole.py"


def test_the_guides_torchrl_example_is_the_tested_example_file():
    page = (ROOT / "docs" / "guide" / "torchrl.md").read_text()
    block = page.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == EXAMPLE.read_text().split('"""', 2)[2].lstrip("\n")


@pytest.mark.slow
def test_the_guides_torchrl_example_solves_cartpole_in_at_least_4_of_5_seeds():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from readme_example import run
    finally:
        sys.path.pop(0)
    assert sum(run(seed)[0] for seed in range(5)) >= 4


# --- TorchRL's PPO losses with functional: false (the modules called as they are) ------------------------------
def test_ppo_loss_functional_false_gives_the_same_losses_and_gradients():
    from pgtorchrl.pipeline.build import build_pipeline
    from pgtorchrl.pipeline.parse import load_spec

    ppo = ROOT / "pipelines" / "ppo_cartpole.yaml"
    pipelines = [
        build_pipeline(load_spec(ppo, ["collector.frames_per_batch=256", f"loss.functional={f}"]))
        for f in ("true", "false")
    ]
    assert [p.loss.functional for p in pipelines] == [True, False]
    batch = next(iter(pipelines[0].make_collector()))
    pipelines[0].advantage(batch)
    grads = []
    for p in pipelines:
        out = p.loss(batch.clone())
        (out["loss_objective"] + out["loss_critic"]).backward()
        grads.append([t.grad.clone() for t in [*p.actor.parameters(), *p.critic.parameters()]])
        grads[-1].append(torch.stack([out["loss_objective"], out["loss_critic"]]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)

"""The encoders chosen from an env's observation spec (pgtorchrl.modules.encoders): per space kind,
the features' shapes and values, uint8 frames kept as uint8 in the batch, and actors and critics
built over them for discrete, image and dict observations."""

from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Binary, Bounded, Categorical, Composite, MultiCategorical, OneHot, Unbounded

from pgtorchrl.modules.encoders import (
    MINATAR_CNN,
    NATURE_CNN,
    ConvEncoder,
    ConvSettings,
    FloatEncoder,
    OneHotEncoder,
    make_encoder,
)
from pgtorchrl.modules.fast_policies import categorical_logits_net, gaussian_net
from pgtorchrl.modules.models import make_actor, make_critic

ROOT = Path(__file__).resolve().parents[1]


def test_flat_float_vectors_need_no_encoder():
    encoder, n = make_encoder(Composite(a=Unbounded(4), b=Unbounded(2)), ["a", "b"])
    assert encoder is None and n == 6


@pytest.mark.parametrize(
    "spec, batch, expected",
    [
        (OneHot(5), torch.nn.functional.one_hot(torch.tensor([3, 0]), 5), [[0, 0, 0, 1, 0], [1, 0, 0, 0, 0]]),
        (Categorical(4), torch.tensor([2, 1]), [[0, 0, 1, 0], [0, 1, 0, 0]]),
        (Categorical(4, shape=(1,)), torch.tensor([[2], [1]]), [[0, 0, 1, 0], [0, 1, 0, 0]]),
        (MultiCategorical([2, 3]), torch.tensor([[1, 0], [0, 2]]), [[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]]),
        (Binary(3), torch.tensor([[1, 0, 1], [0, 0, 0]], dtype=torch.int8), [[1, 0, 1], [0, 0, 0]]),
    ],
)
def test_discrete_observations_become_one_hot_float_features(spec, batch, expected):
    encoder, n = make_encoder(Composite(obs=spec), ["obs"])
    out = encoder(batch)
    assert out.dtype == torch.float32 and n == len(expected[0])
    assert out.tolist() == expected


@pytest.mark.parametrize(
    "shape, channels_last, settings",
    [((4, 84, 84), False, NATURE_CNN), ((84, 84, 3), True, NATURE_CNN), ((10, 10, 6), True, MINATAR_CNN)],
)
def test_images_get_the_network_of_their_frame_size_in_either_layout(shape, channels_last, settings):
    spec = Composite(pixels=Bounded(0, 255, shape=(2, *shape), dtype=torch.uint8), shape=(2,))  # 2 envs
    encoder, n = make_encoder(spec, ["pixels"])
    conv = encoder.encoders[0]
    assert isinstance(conv, ConvEncoder) and conv.channels_last == channels_last and n == settings.out_features
    assert [m.out_channels for m in conv.convs if isinstance(m, torch.nn.Conv2d)] == list(settings.channels)
    frames = torch.randint(0, 256, (5, 2, *shape), dtype=torch.uint8)  # [time, envs, ...]
    assert encoder(frames).shape == (5, 2, n)


def test_uint8_frames_are_scaled_inside_the_module_as_their_float_values():
    conv = ConvEncoder((10, 10, 4), MINATAR_CNN, channels_last=True)
    frames = torch.randint(0, 256, (3, 10, 10, 4), dtype=torch.uint8)
    torch.testing.assert_close(conv(frames), conv(frames.float() / 255.0))
    chw = ConvEncoder((4, 10, 10), MINATAR_CNN, channels_last=False)
    chw.load_state_dict(conv.state_dict())
    torch.testing.assert_close(chw(frames.permute(0, 3, 1, 2)), conv(frames))  # the layouts agree


def test_a_dict_observation_concatenates_one_encoder_per_key_in_in_keys_order():
    spec = Composite(
        image=Bounded(0, 255, shape=(10, 10, 4), dtype=torch.uint8),
        cell=OneHot(16),
        position=Unbounded(3),
        nested=Composite(flag=Binary(2)),
    )
    keys = ["position", "cell", "image", ("nested", "flag")]
    encoder, n = make_encoder(spec, keys, conv=ConvSettings((8,), (3,), (1,), 32))
    assert n == 3 + 16 + 32 + 2
    kinds = [type(e).__name__ for e in encoder.encoders]
    assert kinds == ["Identity", "FloatEncoder", "ConvEncoder", "FloatEncoder"]
    x = [torch.randn(7, 3), torch.nn.functional.one_hot(torch.randint(16, (7,)), 16)]
    x += [torch.randint(0, 256, (7, 10, 10, 4), dtype=torch.uint8), torch.randint(0, 2, (7, 2), dtype=torch.int8)]
    out = encoder(*x)
    assert out.shape == (7, n)
    torch.testing.assert_close(out[:, :3], x[0])
    torch.testing.assert_close(out[:, 3:19], x[1].float())


def test_actors_and_critics_over_encoders_act_and_keep_the_fast_paths():
    spec = Composite(image=Bounded(0, 255, shape=(10, 10, 4), dtype=torch.uint8), cell=OneHot(16))
    keys = ["image", "cell"]
    td = TensorDict(
        {
            "image": torch.randint(0, 256, (6, 10, 10, 4), dtype=torch.uint8),
            "cell": torch.nn.functional.one_hot(torch.randint(16, (6,)), 16),
        },
        [6],
    )
    actor = make_actor(spec, OneHot(3), in_keys=keys, hidden_sizes=[16])
    gaussian = make_actor(spec, Bounded(-1.0, 1.0, shape=(2,)), in_keys=keys, hidden_sizes=[16])
    critic = make_critic(spec, in_keys=keys, hidden_sizes=[16])
    assert actor(td.clone())["action"].shape == (6, 3) and gaussian(td.clone())["action"].shape == (6, 2)
    assert critic(td.clone())["state_value"].shape == (6, 1)
    assert categorical_logits_net(actor) is not None and gaussian_net(gaussian) is not None
    assert td["image"].dtype == torch.uint8  # the batch keeps its frames as they came


def test_an_image_too_small_for_the_convolutions_is_a_one_line_error():
    with pytest.raises(ValueError) as err:
        make_encoder(Composite(pixels=Unbounded((3, 6, 6))), ["pixels"], conv=NATURE_CNN)
    assert "do not fit an image of 6x6" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="one length"):
        ConvSettings((8, 8), (3,), (1,), 16)


def test_encoders_pass_gradients_to_their_weights_not_to_discrete_inputs():
    assert list(FloatEncoder().parameters()) == [] and list(OneHotEncoder([3]).parameters()) == []
    conv = ConvEncoder((10, 10, 4), MINATAR_CNN, channels_last=True)
    conv(torch.rand(2, 10, 10, 4)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())


def test_frozenlakes_discrete_observation_is_learned_to_the_goal(store):
    """A Discrete(16) observation (TorchRL's one-hot int64) read one-hot: the non-slippery lake is solved."""
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import train

    result = train(load_spec(ROOT / "pipelines" / "ppo_frozenlake.yaml", ["train.total_frames=16384"]))
    assert result.solved and result.eval_return == 1.0


def test_blackjacks_tuple_observation_is_one_key_per_component():
    from pgtorchrl.envs.gym import make_gym_env

    env = make_gym_env("Blackjack-v1", num_envs=2)
    td = env.rollout(3)
    assert [td["observation_0"].shape[-1], td["observation_1"].shape[-1], td["observation_2"].shape[-1]] == [32, 11, 2]
    assert (td["observation_0"].sum(-1) == 1).all()  # one-hot, as TorchRL encodes a Discrete space


def test_the_cnn_sections_build_their_convolutions_from_the_spec_fields():
    from types import SimpleNamespace

    from pgtorchrl.components import ACTORS, CRITICS

    env = SimpleNamespace(
        observation_spec=Composite(pixels=Bounded(0, 255, shape=(10, 10, 4), dtype=torch.uint8)), action_spec=OneHot(3)
    )
    minatar = dict(channels=[16], kernel_sizes=[3], strides=[1], out_features=128, hidden_sizes=[])
    actor = ACTORS.build(ACTORS["cnn"].model(name="cnn", **minatar), env)
    critic = CRITICS.build(CRITICS["cnn"].model(name="cnn", **minatar), env)
    for module in (actor, critic):
        convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(16, (3, 3), (1, 1))]
    td = TensorDict({"pixels": torch.randint(0, 256, (2, 10, 10, 4), dtype=torch.uint8)}, [2])
    assert actor(td.clone())["action"].shape == (2, 3) and critic(td.clone())["state_value"].shape == (2, 1)
    with pytest.raises(Exception, match="kernel_sizes"):
        ACTORS["cnn"].model(name="cnn", kernel_sizes="three")


def test_a_minatar_id_without_the_package_is_one_line_naming_the_install_command(monkeypatch):
    import importlib.util

    from pgtorchrl.envs import ids

    real = importlib.util.find_spec
    monkeypatch.setattr(ids.importlib.util, "find_spec", lambda name: None if name == "minatar" else real(name))
    with pytest.raises(ValueError) as err:
        ids.check_gym_id("MinAtar/Breakout-v1")
    assert str(err.value) == (
        "env id 'MinAtar/Breakout-v1' needs the minatar package: pip install -c constraints.txt -e '.[minatar]'"
    )


def test_minatars_bool_frames_reach_the_cnn_as_they_are():
    pytest.importorskip("minatar")
    from pgtorchrl.envs.gym import make_gym_env

    env = make_gym_env("MinAtar/Breakout-v1", num_envs=2)
    actor = make_actor(env.observation_spec, env.action_spec, hidden_sizes=[], conv=MINATAR_CNN)
    td = env.rollout(4, actor)
    assert td["observation"].dtype == torch.bool and td["observation"].shape == (2, 4, 10, 10, 4)
    assert td["action"].shape == (2, 4, 3)  # Breakout's minimal action set


def test_load_actor_of_a_minatar_run_acts_as_the_trained_actor(store):
    pytest.importorskip("minatar")
    from torchrl.envs import ExplorationType, set_exploration_type

    from pgtorchrl.experiments.loading import load_actor
    from pgtorchrl.pipeline.build import build_pipeline
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import train

    spec = load_spec(
        ROOT / "pipelines" / "ppo_minatar_breakout.yaml",
        ["train.total_frames=2048", "env.num_envs=2", "eval.episodes=1", "eval.every_frames=null"],
    )
    p = build_pipeline(spec)
    result = train(spec, pipeline=p)
    loaded = load_actor(result.run_id)
    frames = p.env.rollout(20)  # [2 envs, 20 steps] of bool frames
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        trained, restored = p.actor(frames.clone())["action"], loaded(frames.clone())["action"]
    assert torch.equal(trained, restored)  # the run's weights, not a fresh network's


def test_frames_without_gradients_are_encoded_in_chunks_with_the_whole_batchs_values():
    """A batch of 600 frames under no_grad is encoded 256 at a time (the memory of a whole
    batch's float32 frames and activations is bounded): the features equal those of one pass."""
    torch.manual_seed(0)
    encoder = ConvEncoder((4, 36, 36), NATURE_CNN, channels_last=False)
    frames = torch.randint(0, 256, (3, 200, 4, 36, 36), dtype=torch.uint8)
    calls = []
    encoder.convs.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    whole = encoder(frames)  # with gradients: one pass
    with torch.no_grad():
        chunked = encoder(frames)
    assert calls == [600, 256, 256, 88]
    assert chunked.shape == whole.shape == (3, 200, NATURE_CNN.out_features)
    torch.testing.assert_close(chunked, whole.detach())

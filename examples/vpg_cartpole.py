"""Vanilla policy gradient on CartPole-v1 from pgtorchrl's modules in plain TorchRL code: the recipe
of pipelines/vpg_cartpole.yaml (separate critic optimizer, value steps, clipping, deterministic
evaluation, stop at the target). Usage: python examples/vpg_cartpole.py [SEED]"""

import sys

import torch
from torch.nn.utils import clip_grad_norm_
from torchrl.collectors import Collector

from pgtorchrl import GAE, ReinforceLoss, evaluate, make_actor, make_critic, make_gym_env

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
torch.manual_seed(seed)
env = make_gym_env("CartPole-v1", num_envs=8)
env.set_seed(seed)
eval_env = make_gym_env("CartPole-v1", num_envs=10)  # 10 deterministic episodes side by side
eval_env.set_seed(seed + 10_000)

actor = make_actor(env.observation_spec, env.action_spec)  # reads observation; writes action, action_log_prob
critic = make_critic(env.observation_spec)  # writes state_value
advantage = GAE(value_network=critic, gamma=0.99, lmbda=0.95, normalize=True)  # writes advantage, value_target
loss = ReinforceLoss(actor, critic)  # loss_actor, loss_critic, entropy
actor_optim = torch.optim.Adam(actor.parameters(), lr=3e-3)
critic_optim = torch.optim.Adam(critic.parameters(), lr=3e-3)
collector = Collector(env, actor, frames_per_batch=256, total_frames=200_000, auto_register_policy_transforms=False)

frames = 0
for batch in collector:
    frames += batch.numel()
    advantage(batch)
    for value_step in range(5):  # 5 critic steps per batch; the first one also steps the actor
        losses = loss(batch)
        actor_optim.zero_grad()
        critic_optim.zero_grad()
        (losses["loss_critic"] + (losses["loss_actor"] if value_step == 0 else 0)).backward()
        if value_step == 0:
            clip_grad_norm_(actor.parameters(), max_norm=1.0)
            actor_optim.step()
        clip_grad_norm_(critic.parameters(), max_norm=1.0)
        critic_optim.step()
    if frames % 4096 == 0:
        eval_return = evaluate(eval_env, actor).mean().item()  # the policy's mode, one episode per env
        print(f"{frames} frames: eval return {eval_return:.1f}")
        if eval_return >= 475:
            break
collector.shutdown()

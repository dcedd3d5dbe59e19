"""Environments: gymnasium ids through TorchRL (gym), the tensor fast path (native, gym_native),
envs written in torch (custom/), env state for checkpoints (state) and the spec's env catalog."""

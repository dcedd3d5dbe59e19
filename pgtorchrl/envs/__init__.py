"""Environments: gymnasium ids through TorchRL (gym), the tensor fast path (native, gym_native) and envs written in torch (custom/)."""

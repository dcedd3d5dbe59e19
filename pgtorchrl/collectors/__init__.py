"""Collection: whole episodes and the tensor fast path (rollout), and TorchRL's Collector on Ray (ray)."""

"""Collection: whole episodes and the tensor fast path (rollout), TorchRL's Collector on Ray (ray),
and the spec's collector catalog."""

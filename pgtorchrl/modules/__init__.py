"""Actor and critic networks as TorchRL modules, the categorical fast path they share, the
textbook's linear-softmax policy, and the spec's actor and critic catalog."""

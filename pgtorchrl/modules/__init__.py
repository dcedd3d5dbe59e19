"""Actor and critic networks as TorchRL modules, and the categorical fast path they share."""

"""Returns and advantages: pure tensor maths (functional) under thin TensorDict modules (advantages)."""

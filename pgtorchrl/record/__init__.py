"""MLflow tracking (the run and its writer process), plots, videos, and loading trained runs back."""

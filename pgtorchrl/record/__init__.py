"""MLflow tracking (the run and its writer process), plots, videos and store locks."""

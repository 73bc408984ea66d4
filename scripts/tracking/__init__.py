"""TensorBoard and MLflow: what a run logs."""

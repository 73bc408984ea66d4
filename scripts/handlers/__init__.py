"""Ignite handlers of the trainer and evaluator, one job each."""

"""Scores of a prediction against its label: Dice per class, surface distances and volumes."""

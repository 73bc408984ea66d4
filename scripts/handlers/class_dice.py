"""Each class's validation Dice as a metric of its own, for label maps of several classes."""

from __future__ import annotations

import re

import torch
from ignite.engine import Engine, Events

from scripts.data.label_classes import foreground_names, is_binary


def metric_name(class_name: str) -> str:
    """``val_dice_<class>``, the class name in letters, digits and underscores (TensorBoard tags, log columns)."""
    return "val_dice_" + re.sub(r"\W+", "_", class_name).strip("_")


class ClassDice:
    """After each validation, the mean over cases of each class's Dice (MONAI's ``MeanDice`` keeps them per case and
    class in ``engine.state.metric_details``) as ``engine.state.metrics["val_dice_<class>"]``, which the
    ``StatsHandler`` and ``TensorBoardStatsHandler`` attached after this log with the other metrics. The mean over
    the classes is ``val_mean_dice``; one class can be lost while that mean looks fine, which these show. Two
    classes: nothing to add."""

    def __init__(self, classes: dict, dice_metric: str = "val_mean_dice") -> None:
        self.dice_metric = dice_metric
        self.names = [] if is_binary(classes) else foreground_names(classes)

    def attach(self, engine: Engine) -> None:
        if self.names:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        details = getattr(engine.state, "metric_details", {}).get(self.dice_metric)
        if details is None:
            return
        per_class = torch.nanmean(torch.as_tensor(details, dtype=torch.float64), dim=0)  # nan: class absent in a case
        for name, value in zip(self.names, per_class.tolist(), strict=True):
            engine.state.metrics[metric_name(name)] = value

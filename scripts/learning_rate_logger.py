"""Write the optimizer's learning rate to TensorBoard every iteration."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events


class LearningRateLogger:
    """MONAI's ``TensorBoardStatsHandler`` logs engine outputs and metrics but not optimizer state; the
    OneCycle schedule is only visible if the learning rate itself is plotted per iteration."""

    def __init__(self, summary_writer, optimizer: torch.optim.Optimizer, tag: str = "lr") -> None:
        self.writer = summary_writer
        self.optimizer = optimizer
        self.tag = tag

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        self.writer.add_scalar(self.tag, self.optimizer.param_groups[0]["lr"], engine.state.iteration)

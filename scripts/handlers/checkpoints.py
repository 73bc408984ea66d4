"""The run's three checkpoints as one component: what a resumed or crashed run goes on from, and the best weights."""

from __future__ import annotations

from ignite.engine import Engine

from scripts.handlers.checkpoint_handler import CheckpointHandler

BEST, LAST, PERIODIC = "best.pth", "last.pth", "periodic_{global_step:04d}.pth"


class Checkpoints:
    """Three :class:`CheckpointHandler` of one :class:`~scripts.persistence.training_state.TrainingState` in
    ``dirname``, attached in this order so each epoch's files agree:

    * ``best.pth`` after every validation that lowers ``score_metric`` (the evaluator's: it scores);
    * ``last.pth`` after every epoch (``--resume`` goes on from it);
    * ``periodic_####.pth`` every ``period`` epochs, the newest ``keep`` kept (a run to go back to).

    Placed after early stopping in the trainer's handlers, so every file holds the early-stopping state of its epoch.
    """

    def __init__(self, state, dirname: str, evaluator: Engine, score_metric: str, period: int, keep: int) -> None:
        self.handlers = (
            CheckpointHandler(state, dirname, BEST, score_metric=score_metric, engine=evaluator),
            CheckpointHandler(state, dirname, LAST),
            CheckpointHandler(state, dirname, PERIODIC, n_saved=keep, every=period),
        )

    def attach(self, trainer: Engine) -> None:
        for handler in self.handlers:
            handler.attach(trainer)

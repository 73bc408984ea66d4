"""Early stopping on the validation loss, decided once and obeyed by every rank."""

from __future__ import annotations

import logging

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping

logger = logging.getLogger(__name__)


class EarlyStoppingOnValidation:
    """Ignite's ``EarlyStopping`` on ``metric`` of the evaluator (lower is better), checked after each validation.

    Ignite's handler terminates the engine it is given on whichever rank decides; here it is given a stand-in
    engine, rank 0's decision is broadcast, and every rank stops at the same epoch. Its state (counter, best
    score, best epoch) goes into the checkpoint. With a ``summary_writer``, ``best_epoch`` and
    ``epochs_without_improvement`` are plotted per validation.
    """

    def __init__(
        self,
        evaluator: Engine,
        patience: int = 10,
        min_delta: float = 0.0,
        metric: str = "val_loss",
        summary_writer=None,
    ) -> None:
        self.evaluator, self.metric, self.writer = evaluator, metric, summary_writer
        self._decider = Engine(lambda engine, batch: None)
        self.stopper = EarlyStopping(
            patience=int(patience),
            score_function=lambda _: float(self.evaluator.state.metrics[self.metric]),
            trainer=self._decider,
            threshold=float(min_delta),
            mode="min",
        )
        self.best_epoch = 0

    @property
    def best_value(self) -> float | None:
        """The lowest ``metric`` so far, with the metric's own sign (the stopper runs with ``mode="min"`` on the
        metric itself, not on its negative as Ignite's examples do); ``None`` before the first validation."""
        return None if self.stopper.best_score is None else float(self.stopper.best_score)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        if self.evaluator.state.epoch != epoch or self.metric not in self.evaluator.state.metrics:
            return  # no validation this epoch
        self.stopper(self.evaluator)
        if self.stopper.counter == 0:
            self.best_epoch = epoch
        stop = bool(idist.broadcast(torch.tensor(int(self._decider.should_terminate)), src=0))
        if self.writer is not None:
            self.writer.add_scalar("best_epoch", self.best_epoch, epoch)
            self.writer.add_scalar("epochs_without_improvement", epoch - self.best_epoch, epoch)
        if stop:
            logger.info(
                "Early stopping at epoch %d: %s has not improved by more than %g for %d validations (best at epoch %d)",
                epoch,
                self.metric,
                self.stopper.threshold,
                self.stopper.patience,
                self.best_epoch,
            )
            engine.terminate()

    def state_dict(self) -> dict:
        return {**self.stopper.state_dict(), "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.stopper.load_state_dict({k: v for k, v in state.items() if k != "best_epoch"})
        self.best_epoch = int(state["best_epoch"])

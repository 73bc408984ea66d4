"""Report each epoch's metrics and checkpoints of a bundle run to Ray Tune."""

from __future__ import annotations

import logging
import math

from ignite.engine import Engine, Events

logger = logging.getLogger(__name__)


class TuneReport:
    """``ray.tune.report`` every epoch's ``training_loss``, ``validation_loss``, ``mean_dice`` and ``epoch``, with the
    run's checkpoint folder (``last.pth``, ``best.pth``, ...) as the Tune checkpoint.

    Attach it after the bundle's validation and checkpoint handlers (``scripts.tools.launch.run_training`` does), so
    the metrics and checkpoints are those of the epoch just finished; the bundle must validate every epoch
    (``val_interval`` 1), an epoch without validation repeats the previous validation's numbers.

    Tune ends a trial by raising ``SystemExit`` in ``report`` and then ending the trial's process. So:

    - the TensorBoard writers are flushed before every report, and a trial Tune stops early (ASHA) is ended with
      ``trainer.terminate()``, so the bundle's end-of-run steps get their chance to run (they may be cut short);
    - the last epoch is reported by :meth:`finish`, after the workflow's ``finalize``, so a trial that runs all its
      epochs writes ``models/model.pt`` and closes its TensorBoard files before Tune ends it.
    """

    def __init__(self, evaluator: Engine, ckpt_dir: str, writers=()) -> None:
        self.evaluator, self.ckpt_dir, self.writers = evaluator, ckpt_dir, list(writers)
        self.pending: dict | None = None

    @classmethod
    def for_workflow(cls, workflow) -> "TuneReport":
        parsed = workflow.parser.get_parsed_content
        return cls(
            workflow.evaluator,
            parsed("ckpt_dir"),
            [parsed("tensorboard#train_writer"), parsed("tensorboard#val_writer")],
        )

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self)

    def metrics(self, trainer: Engine) -> dict:
        val = self.evaluator.state.metrics
        return {
            "training_loss": float(trainer.state.metrics.get("train_loss", math.nan)),
            "validation_loss": float(val.get("val_loss", math.nan)),
            "mean_dice": float(val.get("val_mean_dice", math.nan)),
            "epoch": int(trainer.state.epoch),
        }

    def __call__(self, trainer: Engine) -> None:
        metrics = self.metrics(trainer)
        for writer in self.writers:
            writer.flush()
        if trainer.state.epoch >= trainer.state.max_epochs:
            self.pending = metrics  # reported by finish(), once the run is finalized
        elif self.report(metrics):
            logger.info("Ray Tune stopped this trial after epoch %d", metrics["epoch"])
            trainer.terminate()

    def finish(self) -> None:
        """Report the last epoch; called after the workflow's ``finalize``."""
        if self.pending is not None:
            metrics, self.pending = self.pending, None
            self.report(metrics)

    def report(self, metrics: dict) -> bool:
        """Report to Tune; ``True`` if Tune wants the trial to stop."""
        from ray import tune  # only inside a Tune trial; the core bundle does not need Ray

        try:
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(self.ckpt_dir))
        except SystemExit:  # Tune's signal to stop this trial
            return True
        return False

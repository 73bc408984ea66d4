"""The run's hyper-parameters with its final metrics, for TensorBoard's HPARAMS tab."""

from __future__ import annotations

from ignite.engine import Engine, Events


class HParamsLogger:
    """At the end of training, write ``hparams`` (numbers, strings, bools) with the evaluator's final
    metrics and the early stopper's best value (``hparam/best_val_loss``, the lowest ``val_loss``, positive as the
    loss is) and epoch."""

    def __init__(self, summary_writer, hparams: dict, evaluator: Engine, early_stopping=None) -> None:
        self.writer, self.hparams, self.evaluator, self.early_stopping = (
            summary_writer,
            hparams,
            evaluator,
            early_stopping,
        )

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        metrics = {
            f"hparam/{k}": float(v) for k, v in self.evaluator.state.metrics.items() if isinstance(v, (int, float))
        }
        if self.early_stopping is not None and self.early_stopping.best_value is not None:
            metrics[f"hparam/best_{self.early_stopping.metric}"] = self.early_stopping.best_value
            metrics["hparam/best_epoch"] = float(self.early_stopping.best_epoch)
        hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in self.hparams.items()}
        self.writer.add_hparams(hparams, metrics, run_name="hparams", global_step=engine.state.epoch)

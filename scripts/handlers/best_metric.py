"""Which metric is called "best" in the log: the validation loss, and only where it chooses a model."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from ignite.engine import Engine, Events


class NoBestMetric:
    """MONAI compares an engine's key metric with its best after every epoch ("Got new best metric of ...") and its
    StatsHandler logs "Key metric: ... best value ... at epoch ...". An evaluation of a finished model chooses no
    model, so it has no best: attached to its evaluator, the metrics are still computed and logged, and those two
    lines are not written."""

    def attach(self, engine: Engine) -> None:
        engine.state.key_metric_name = None  # what MONAI's comparison and StatsHandler's key metric line look for


class BestByValidation:
    """The trainer's "best" lines are the evaluator's (``val_loss``: it selects ``best.pth``, the weights restored at
    the end, and early stopping watches it), over the whole run.

    MONAI computes and logs the trainer's metrics (``train_loss``) only if one of them is its key metric, and then
    logs a best ``train_loss`` every epoch though it chooses nothing: attached to the trainer, that comparison and
    its lines go (:class:`NoBestMetric`) and ``train_loss`` is still logged. A resumed run's evaluator starts without
    a best; when training starts, ``best_checkpoint``'s epoch and value are put into it, so "Got new best metric of
    val_loss" and "Key metric: val_loss best value ... at epoch ..." count the epochs before the resume too and name
    the epoch whose weights are restored at the end."""

    def __init__(self, evaluator: Engine, best_checkpoint: str) -> None:
        self.evaluator, self.best_checkpoint = evaluator, Path(best_checkpoint)

    def attach(self, engine: Engine) -> None:
        NoBestMetric().attach(engine)
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if not self.best_checkpoint.is_file():  # a new run, or a rank without the checkpoint folder
            return
        try:
            best = torch.load(self.best_checkpoint, map_location="cpu", weights_only=True, mmap=True)
            epoch, value = int(best["epoch"]), float(best["monitor_value"])
        except Exception:  # the checkpoint handlers name an unreadable file; the log then counts from the resume
            return
        if math.isfinite(value):
            self.evaluator.state.best_metric, self.evaluator.state.best_metric_epoch = value, epoch
